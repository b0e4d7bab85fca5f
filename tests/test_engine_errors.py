"""Bad input raises a clear Python exception, never crashes; odd-but-valid arrays are converted."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, build, make_random_model

V, E, C = 12, 3, 3


@pytest.fixture(scope="module")
def arrays():
    return make_random_model(np.random.default_rng(30), e=E, layers=[(4, True)],
                             head=[(5, True), (None, True)], V=V, C=C)


@pytest.fixture(scope="module")
def model(arrays):
    return build(arrays)


def with_direction(arrays, **changes):
    layer = [dict(arrays["lstm_layers"][0][0], **changes), arrays["lstm_layers"][0][1]]
    return dict(arrays, lstm_layers=[layer])


def raises(exc, *match):
    """pytest.raises with a message that must name what is wrong (any of the words)."""
    return pytest.raises(exc, match="(?i)" + "|".join(match))


@pytest.mark.parametrize("change,words", [
    ({"W_ih": np.zeros((16, E + 1))}, ("W_ih", "shape", "input", "dim")),
    ({"W_ih": np.zeros((15, E))}, ("4 \\* hidden", "rows", "shape", "W_ih")),
    ({"W_hh": np.zeros((16, 5))}, ("W_hh", "shape", "hidden")),
    ({"b": np.zeros(15)}, ("b", "shape", "bias")),
    ({"b": np.zeros((16, 1))}, ("b", "shape", "bias", "1-D", "dim")),
])
def test_inconsistent_lstm_shapes(arrays, change, words):
    with raises(ValueError, *words):
        build(with_direction(arrays, **change))


def test_inconsistent_layer_and_head_shapes(arrays):
    # forward and backward directions of different hidden sizes are allowed only if consistent
    # with the next consumer; here the head expects 8 features but gets 4 + 3
    small = make_random_model(np.random.default_rng(31), e=E, layers=[(3, False)], V=V)
    bad = [arrays["lstm_layers"][0][0], small["lstm_layers"][0][0]]
    with pytest.raises(ValueError):
        build(dict(arrays, lstm_layers=[bad]))
    with raises(ValueError, "head", "shape", "W"):
        build(dict(arrays, head=[{"W": np.zeros((5, 7)), "b": None}, arrays["head"][1]]))
    with raises(ValueError, "head", "shape", "b"):
        build(dict(arrays, head=[{"W": arrays["head"][0]["W"], "b": np.zeros(4)},
                                 arrays["head"][1]]))
    two = make_random_model(np.random.default_rng(32), e=E, layers=[(4, True), (2, False)], V=V)
    wrong_in = [two["lstm_layers"][0], [dict(two["lstm_layers"][1][0],
                                             W_ih=np.zeros((8, 7)))]]
    with pytest.raises(ValueError):
        build(dict(two, lstm_layers=wrong_in))
    with raises(ValueError, "embedding", "2-D", "shape"):
        build(dict(arrays, embedding=np.zeros(V)))
    with pytest.raises(ValueError):
        build(dict(arrays, lstm_layers=[]))
    with pytest.raises(ValueError):
        build(dict(arrays, head=[]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(arrays, bad):
    emb = arrays["embedding"].copy()
    emb[3, 1] = bad
    with raises(ValueError, "nan", "inf", "finite"):
        build(dict(arrays, embedding=emb))
    W = arrays["lstm_layers"][0][0]["W_hh"].copy()
    W[0, 0] = bad
    with raises(ValueError, "nan", "inf", "finite"):
        build(with_direction(arrays, W_hh=W))
    head = [dict(arrays["head"][0]), dict(arrays["head"][1], b=np.array([0.0, bad, 0.0]))]
    with raises(ValueError, "nan", "inf", "finite"):
        build(dict(arrays, head=head))


def test_non_numeric_weights(arrays):
    with pytest.raises((TypeError, ValueError)):
        build(dict(arrays, embedding=np.full((V, E), "a")))
    with pytest.raises((TypeError, ValueError)):
        build(dict(arrays, embedding=[[1.0, 2.0], [3.0]]))  # ragged
    with pytest.raises((TypeError, ValueError)):
        build(with_direction(arrays, W_ih=None))


def test_odd_layouts_and_dtypes_are_converted(arrays, model):
    """Fortran order, non-contiguous views, int and float32 input arrays all give the model the
    same float64 numbers as the plain C-contiguous float64 arrays."""
    ids = [1, 2, 3, 4, 5]
    want = model.explain(ids, bias_factor=1.0, rule="abs")

    def fortran(a):
        return np.asfortranarray(a)

    def strided(a):  # a non-contiguous view holding the same values
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        big[::2] = a
        return big[::2]

    for transform in (fortran, strided):
        odd = {
            "embedding": transform(arrays["embedding"]),
            "lstm_layers": [[{k: transform(v) for k, v in dr.items()}
                             for dr in arrays["lstm_layers"][0]]],
            "head": [{"W": transform(h["W"]), "b": h["b"]} for h in arrays["head"]],
        }
        got = build(odd).explain(ids, bias_factor=1.0, rule="abs")
        np.testing.assert_array_equal(got.relevance, want.relevance)
        np.testing.assert_array_equal(got.embedding_relevance, want.embedding_relevance)

    ints = dict(arrays, embedding=np.rint(arrays["embedding"] * 4).astype(np.int32))
    as_float = dict(arrays, embedding=ints["embedding"].astype(np.float64))
    m_int = build(ints)
    assert np.dtype(m_int.dtype) == np.float64
    np.testing.assert_array_equal(m_int.explain(ids).relevance,
                                  build(as_float).explain(ids).relevance)
    # float32 weights with dtype=float64 are widened exactly
    f32 = {"embedding": arrays["embedding"].astype(np.float32),
           "lstm_layers": [[{k: v.astype(np.float32) for k, v in dr.items()}
                            for dr in arrays["lstm_layers"][0]]],
           "head": [{"W": h["W"].astype(np.float32), "b": h["b"]} for h in arrays["head"]]}
    widened = build(f32, dtype=np.float64).explain(ids)
    word, _, _ = ref.lrp(f32, ids)
    assert_close(widened.relevance, word)


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex128"])
def test_unsupported_model_dtype(arrays, dtype):
    with raises((ValueError, TypeError), "dtype", "float"):
        build(arrays, dtype=dtype)


@pytest.mark.parametrize("ids,exc", [
    ([0, V], IndexError), ([-1, 2], IndexError), ([2**40], IndexError),
    ([], ValueError), (np.array([], dtype=np.int64), ValueError),
    (np.array([1.0, 2.0]), TypeError), ([1.5, 2], TypeError),
    (np.array([[1, 2]]), ValueError), ([True, False], TypeError),
])
def test_bad_token_ids(model, ids, exc):
    for call in (lambda: model.explain(ids), lambda: model.predict([ids]),
                 lambda: model.explain_batch([[1, 2], ids], method="gi")):
        with pytest.raises(exc) as info:
            call()
        assert len(str(info.value)) > 10  # a message, not a bare exception


@pytest.mark.parametrize("kind", [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint64])
def test_integer_id_arrays_of_any_kind_are_accepted(model, kind):
    ids = [1, 7, 3, 11]
    want = model.explain(ids, method="gi")
    got = model.explain(np.array(ids, dtype=kind), method="gi")
    np.testing.assert_array_equal(got.relevance, want.relevance)
    np.testing.assert_array_equal(model.predict([np.array(ids, dtype=kind)]), model.predict([ids]))
    # a non-contiguous id view
    view = np.array([1, 0, 7, 0, 3, 0, 11], dtype=kind)[::2]
    np.testing.assert_array_equal(model.explain(view, method="gi").relevance, want.relevance)


def test_ids_without_vocabulary_need_ids(model):
    with raises(ValueError, "vocab"):
        model.explain("a text")
    with raises(ValueError, "vocab"):
        model.explain(["a", "b"])


@pytest.mark.parametrize("target", [C, -1, 99, "nope", 1.5])
def test_target_out_of_range(model, target):
    with pytest.raises((ValueError, IndexError, TypeError)) as info:
        model.explain([1, 2], target=target)
    assert len(str(info.value)) > 10
    with pytest.raises((ValueError, IndexError, TypeError)):
        model.explain_batch([[1, 2], [3]], target=[0, target])


def test_target_list_of_wrong_length(model):
    with raises(ValueError, "target"):
        model.explain_batch([[1, 2], [3]], target=[0, 1, 2])


@pytest.mark.parametrize("threads", [0, -1, -8])
def test_threads_must_be_positive(model, threads):
    with raises(ValueError, "threads"):
        model.explain_batch([[1, 2]], threads=threads)
    with raises(ValueError, "threads"):
        model.predict([[1, 2]], threads=threads)


@pytest.mark.parametrize("threads", [1.5, "2", True])
def test_threads_must_be_an_int(model, threads):
    with pytest.raises((TypeError, ValueError), match="threads"):
        model.explain_batch([[1, 2]], threads=threads)


def test_unknown_method_and_rule(model):
    with raises(ValueError, "method"):
        model.explain([1, 2], method="lime")
    with raises(ValueError, "rule"):
        model.explain([1, 2], rule="zplus")
    with raises(ValueError, "rule"):
        model.explain_batch([[1, 2]], rule="")


@pytest.mark.parametrize("deleted,exc", [
    ([2], IndexError), ([-1], IndexError), ([0, 5], IndexError),
    ([0.5], TypeError), (["1"], TypeError),
])
def test_deleted_position_out_of_range(model, deleted, exc):
    with pytest.raises(exc):
        model.explain([1, 2], deleted=deleted)
    with pytest.raises(exc):
        model.predict([[1, 2, 3], [1, 2]], deleted=[[0], deleted])


def test_deleted_list_of_wrong_length(model):
    with raises(ValueError, "deleted"):
        model.explain_batch([[1, 2], [3]], deleted=[[0]])


def test_repeated_deleted_position_is_harmless(model):
    a = model.explain([1, 2, 3], deleted=[1, 1], bias_factor=1.0)
    b = model.explain([1, 2, 3], deleted=[1], bias_factor=1.0)
    np.testing.assert_array_equal(a.relevance, b.relevance)


@pytest.mark.parametrize("eps", [np.nan, np.inf, -1.0])
def test_bad_eps(model, eps):
    with raises(ValueError, "eps"):
        model.explain([1, 2], eps=eps)


@pytest.mark.parametrize("bias_factor", [np.nan, np.inf])
def test_bad_bias_factor(model, bias_factor):
    with raises(ValueError, "bias_factor"):
        model.explain([1, 2], bias_factor=bias_factor)


def test_gate_order_must_be_a_permutation(arrays):
    for order in ("ifg", "iffo", "abcd"):
        with raises(ValueError, "gate_order"):
            build(arrays, gate_order=order)


def test_weights_are_not_shared_with_the_caller(arrays):
    """Later changes to the caller's arrays do not change the model."""
    emb = arrays["embedding"].copy()
    model = build(dict(arrays, embedding=emb))
    before = model.predict([[1, 2, 3]])
    emb[:] = 0.0
    np.testing.assert_array_equal(model.predict([[1, 2, 3]]), before)


# The binding layer is private, but it must refuse anything malformed before a kernel runs:
# Model always sends good batches, so only direct calls can exercise these checks.
@pytest.mark.parametrize("ids,offsets", [
    ([1, 2, 3], [0, 2, 1, 3]),      # decreasing offsets
    ([1, 2, 3], [0, 4]),            # past the end of ids
    ([1, 2, 3], [1, 3]),            # does not start at 0
    ([1, 2, 3], [0, 2]),            # does not end at len(ids)
    ([1, 2, 3], [0, 0, 3]),         # empty sequence
    ([1, 2, 3], [-1, 3]),
    ([1, V, 3], [0, 3]),            # id out of range
    ([1, -5, 3], [0, 3]),
    ([1, 2, 3], []),
])
def test_core_refuses_malformed_batches(model, ids, offsets):
    core = model._core
    ids, offsets = np.array(ids, dtype=np.int64), np.array(offsets, dtype=np.int64)
    for call in (lambda: core.forward(ids, offsets, None, 1),
                 lambda: core.lrp(ids, offsets, None, None, 1e-3, 0.0, "signal-take-all", 2, True),
                 lambda: core.gradient(ids, offsets, None, None, 2, True),
                 lambda: core.occlusion(ids, offsets, None, None, 2)):
        with pytest.raises((ValueError, IndexError, TypeError)):
            call()


def test_core_refuses_bad_masks_and_targets(model):
    core = model._core
    ids, offsets = np.array([1, 2, 3], dtype=np.int64), np.array([0, 1, 3], dtype=np.int64)
    for deleted, targets in [(np.zeros(2, np.uint8), None), (np.zeros((3, 1), np.uint8), None),
                             (None, np.array([0])), (None, np.array([0, C])),
                             (None, np.array([0, -7])), (None, np.array([0.5, 1.0]))]:
        with pytest.raises((ValueError, IndexError, TypeError)):
            core.lrp(ids, offsets, deleted, targets, 1e-3, 0.0, "signal-take-all", 1, True)
        with pytest.raises((ValueError, IndexError, TypeError)):
            core.gradient(ids, offsets, deleted, targets, 1, True)
    with pytest.raises(ValueError):
        core.lrp(ids, offsets, None, None, 1e-3, 0.0, "nope", 1, True)
    with pytest.raises((ValueError, TypeError)):
        core.forward(ids.astype(np.float64), offsets, None, 1)
