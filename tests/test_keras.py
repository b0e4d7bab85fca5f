"""textlrp.from_keras: Keras 3 models (torch backend) saved to .keras and passed live.

Every supported architecture is checked twice: textlrp's scores equal Keras' own scores
before the final softmax/sigmoid (the model called in inference mode, float32, 1e-5), and
the imported model equals -- weights and LRP relevances -- a model built with from_arrays
from Keras' weights re-ordered by hand here, independently of the importer. Every refusal
names the layer and the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch")
pytest.importorskip("h5py")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # another backend was chosen before this module loaded
    pytest.skip(f"these tests run Keras on the torch backend, not {keras.backend.backend()}",
                allow_module_level=True)

from conftest import assert_one_line_error, run_textlrp

import textlrp
from textlrp.keras_import import KerasImportError

layers = keras.layers
V, E, D, C = 23, 6, 5, 3
# Keras 3 on numpy 2 warns about its own Variable.__array__; not textlrp's business.
pytestmark = pytest.mark.filterwarnings(r"ignore::DeprecationWarning:keras\.")


# --------------------------------------------------------------------------- by hand


def lstm_direction(ws):
    """Keras LSTM weights [kernel [in, 4d], recurrent [d, 4d], (bias [4d])], gate blocks
    i, f, c, o: the engine's i, f, g, o, rows instead of columns."""
    bias = ws[2] if len(ws) == 3 else np.zeros(ws[0].shape[1], np.float32)
    return {"W_ih": ws[0].T, "W_hh": ws[1].T, "b": bias}


def gru_direction(ws):
    """Keras GRU weights [kernel [in, 3d], recurrent [d, 3d], (bias [2, 3d]: input, recurrent)],
    gate blocks z, r, h: the engine wants rows r, z, n."""
    d = ws[1].shape[0]
    bias = ws[2] if len(ws) == 3 else np.zeros((2, 3 * d), np.float32)

    def rzn(a):
        return np.concatenate([a[..., d:2 * d], a[..., :d], a[..., 2 * d:]], axis=-1)

    return {"W_ih": rzn(ws[0]).T, "W_hh": rzn(ws[1]).T, "b_ih": rzn(bias[0]), "b_hh": rzn(bias[1])}


def by_hand(model, pooling="last", binary=False):
    """from_arrays arguments from the live Keras layers' get_weights()."""
    embedding, rnn, cells, head = None, [], [], []
    for layer in model.layers:
        ws = layer.get_weights()
        if isinstance(layer, layers.Embedding):
            embedding = ws[0]
        elif isinstance(layer, layers.Bidirectional):
            inner = layer.forward_layer
            convert = gru_direction if isinstance(inner, layers.GRU) else lstm_direction
            n = len(ws) // 2
            rnn.append([convert(ws[:n]), convert(ws[n:])])
            cells.append("gru" if isinstance(inner, layers.GRU) else "lstm")
        elif isinstance(layer, (layers.LSTM, layers.GRU)):
            is_gru = isinstance(layer, layers.GRU)
            rnn.append([(gru_direction if is_gru else lstm_direction)(ws)])
            cells.append("gru" if is_gru else "lstm")
        elif isinstance(layer, layers.Dense):
            head.append({"W": ws[0].T, "b": ws[1] if len(ws) == 2 else None})
    if binary:  # one sigmoid unit z as two scores -z/2, z/2
        last = head[-1]
        head[-1] = {"W": np.concatenate([-last["W"], last["W"]]) / 2,
                    "b": None if last["b"] is None else np.concatenate([-last["b"], last["b"]]) / 2}
    return {"embedding": embedding, "layers": rnn, "cell": cells, "head": head, "pooling": pooling}


def scaled(model, factor=2.5, seed=0):
    """Larger weights than Keras' initialisers give (and non-zero biases), so that every path
    of the model matters in the comparison."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([w * factor + rng.normal(0, 0.3, w.shape).astype(w.dtype)
                               for w in ws])
    return model


def keras_logits(model, x):
    """Keras' own scores for one batch, before a final softmax/sigmoid: the model minus a
    final activation layer, or with its last Dense layer's activation set to linear."""
    last = model.layers[-1]
    if isinstance(last, (layers.Softmax, layers.Activation)):
        sub = keras.Model(model.inputs[0], model.layers[-2].output)
        return keras.ops.convert_to_numpy(sub(x, training=False))
    saved = last.activation
    last.activation = keras.activations.linear
    try:
        return keras.ops.convert_to_numpy(model(x, training=False))
    finally:
        last.activation = saved


# --------------------------------------------------------------------------- the models


def tokens(n_out=C):
    return keras.Input((None,), dtype="int32"), n_out


def m_lstm():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(V, E),
                             layers.LSTM(D), layers.Dense(C, activation="softmax")]), {}


def m_bilstm_relu_head():
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(V, E)(inp)
    x = layers.Bidirectional(layers.LSTM(D))(x)
    x = layers.Dense(7, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inp, layers.Dense(C, use_bias=False)(x)), {}


def m_stacked():
    return keras.Sequential([
        keras.Input((None,), dtype="int32"), layers.Embedding(V, E), layers.Dropout(0.2),
        layers.LSTM(D, return_sequences=True), layers.SpatialDropout1D(0.2),
        layers.Bidirectional(layers.LSTM(4, return_sequences=True)), layers.LSTM(3),
        layers.Dense(C, activation="softmax")]), {}


def m_gru():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(V, E),
                             layers.GRU(D, return_sequences=True),
                             layers.Bidirectional(layers.GRU(4)),
                             layers.Dense(C, activation="softmax")]), {}


def m_gru_mean():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(V, E),
                             layers.Bidirectional(layers.GRU(D, return_sequences=True)),
                             layers.GlobalAveragePooling1D(), layers.Dense(C)]), {"pooling": "mean"}


def m_bilstm_max():
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(V, E)(inp)
    x = layers.Bidirectional(layers.LSTM(D, return_sequences=True))(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(6, activation="relu")(x)
    return keras.Model(inp, layers.Dense(C, activation="softmax")(x)), {"pooling": "max"}


def m_continuous():
    return keras.Sequential([keras.Input((None, 4)), layers.LSTM(D, return_sequences=True),
                             layers.GlobalAveragePooling1D(), layers.Dense(1)]), {"pooling": "mean"}


def m_continuous_gru_max():
    inp = keras.Input((None, 3))
    x = layers.Bidirectional(layers.GRU(D, return_sequences=True))(inp)
    x = layers.GlobalMaxPooling1D()(x)
    return keras.Model(inp, layers.Dense(C, activation="softmax")(x)), {"pooling": "max"}


def m_no_bias():
    return keras.Sequential([
        keras.Input((None,), dtype="int32"), layers.Embedding(V, E),
        layers.LSTM(D, use_bias=False, return_sequences=True),
        layers.Bidirectional(layers.GRU(4, use_bias=False)),
        layers.Dense(6, use_bias=False, activation="relu"),
        layers.Dense(C, use_bias=False)]), {}


def m_activation_layers():
    return keras.Sequential([
        keras.Input((None,), dtype="int32"), layers.Embedding(V, E), layers.LSTM(D),
        layers.Dense(6), layers.ReLU(), layers.Dense(5), layers.Activation("relu"),
        layers.Dense(C), layers.Softmax()]), {}


def m_dropouts_unroll():
    # dropout, recurrent_dropout: off at inference; unroll: the same steps, unrolled
    return keras.Sequential([
        keras.Input((6,), dtype="int32"), layers.Embedding(V, E),
        layers.LSTM(D, dropout=0.3, recurrent_dropout=0.4, unroll=True),
        layers.Dense(C, activation="sigmoid")]), {}


def m_binary_sigmoid():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(V, E),
                             layers.LSTM(D), layers.Dense(1, activation="sigmoid")]), {}


MODELS = {f.__name__[2:]: f for f in (
    m_lstm, m_bilstm_relu_head, m_stacked, m_gru, m_gru_mean, m_bilstm_max, m_continuous,
    m_continuous_gru_max, m_no_bias, m_activation_layers, m_dropouts_unroll, m_binary_sigmoid)}


def inputs_for(model, rng):
    shape = model.inputs[0].shape
    lengths = [6] * 4 if shape[1] is not None else [1, 2, 6, 11]
    if len(shape) == 3:
        return [rng.normal(0, 1.5, (n, shape[2])).astype(np.float32) for n in lengths]
    return [rng.integers(0, V, n) for n in lengths]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each model built with scaled random weights and saved once: name -> (model, extra, path)."""
    out = {}
    for k, (name, build) in enumerate(MODELS.items()):
        keras.utils.set_random_seed(k)
        model, extra = build()
        scaled(model, seed=k)
        path = tmp_path_factory.mktemp("keras") / f"{name}.keras"
        model.save(path)
        out[name] = (model, extra, path)
    return out


@pytest.mark.parametrize("route", ["path", "live"])
@pytest.mark.parametrize("name", list(MODELS))
def test_scores_and_lrp_match_keras_and_hand_built(saved, name, route):
    model, extra, path = saved[name]
    binary = name == "binary_sigmoid"
    classes = ["neg", "pos"] if binary else None
    imported = textlrp.from_keras(str(path) if route == "path" else model, class_names=classes)
    assert imported.dtype == np.float32
    rng = np.random.default_rng(7)
    xs = inputs_for(model, rng)
    got = imported.predict(xs)
    for x, scores in zip(xs, got):
        expected = keras_logits(model, x[None])[0]
        if binary:  # two scores -z/2, z/2 around the logit z; their softmax is Keras' sigmoid
            np.testing.assert_allclose(scores[1] - scores[0], expected[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(scores[0], -scores[1], rtol=0, atol=1e-6)
        else:
            np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(got).max() > 0.05  # the comparison is not between near-zero numbers

    hand = textlrp.from_arrays(**by_hand(model, binary=binary, **extra), class_names=classes,
                               input_size=imported.input_size if imported.continuous else None)
    assert hand.spec.describe() == imported.spec.describe()
    for a, b in zip(_arrays(hand.spec), _arrays(imported.spec)):
        np.testing.assert_array_equal(a, b)
    for kwargs in ({}, {"bias_factor": 1.0, "eps": 1e-2}):
        for e1, e2 in zip(imported.explain_batch(xs, target=0, **kwargs),
                          hand.explain_batch(xs, target=0, **kwargs)):
            np.testing.assert_array_equal(e1.relevance, e2.relevance)
            assert e1.rest == e2.rest
    assert imported.metadata["source"] == "textlrp.from_keras"
    assert imported.metadata["keras_version"] == keras.__version__


def _arrays(spec):
    if spec.embedding is not None:
        yield spec.embedding
    for r in spec.layers:
        for d in r.directions:
            yield from (d.W_ih, d.W_hh, d.b_ih, d.b_hh)
    for h in spec.head:
        yield h.W
        if h.b is not None:
            yield h.b


def test_backward_outputs_are_in_input_order(saved):
    """The mean and max of a bidirectional layer's sequences pool (forward_t, backward_t) pairs
    position by position: reversing the backward half would change max pooling's winners.
    Checked directly on Keras' outputs against the engine's per-position layout."""
    model, _, _ = saved["bilstm_max"]
    bi = model.layers[2]
    assert isinstance(bi, layers.Bidirectional)
    x = np.array([[3, 9, 1, 14, 7]])
    seq = keras.ops.convert_to_numpy(keras.Model(model.inputs[0], bi.output)(x, training=False))[0]
    back = keras.ops.convert_to_numpy(bi.backward_layer(model.layers[1](x)))[0]
    # Keras' backward layer alone returns its outputs in processing order (last word first);
    # the Bidirectional output holds them flipped back: position t = backward state at t.
    np.testing.assert_allclose(seq[:, D:], back[::-1], rtol=1e-6, atol=1e-6)


def test_vocab_classes_and_info(saved, tmp_path):
    path = saved["lstm"][2]
    vocab = [f"w{i}" for i in range(V)]
    m = textlrp.from_keras(path, vocab=vocab, class_names=["a", "b", "c"], unk_token="w0",
                           lowercase=True, dtype=np.float64)
    assert m.dtype == np.float64 and m.vocab == vocab and m.lowercase
    assert m.explain("w3 W5 unseen").oov.tolist() == [False, False, True]
    as_dict = textlrp.from_keras(path, vocab={w: i for i, w in enumerate(vocab)})
    assert as_dict.vocab == vocab
    assert m.metadata["output_activation"] == "softmax"
    assert m.metadata["file"] == path.name
    with pytest.raises(ValueError, match="vocabulary has 3 entries but the embedding has 23"):
        textlrp.from_keras(path, vocab=["a", "b", "c"])
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        textlrp.from_keras(path, class_names=["a", "b"])


def test_one_output_models(saved):
    regression = textlrp.from_keras(saved["continuous"][2])
    assert regression.regression and regression.class_names == ["value"]
    logit = textlrp.from_keras(saved["binary_sigmoid"][2])  # no class names: the logit itself
    assert logit.n_classes == 1
    with pytest.raises(ValueError, match="only a one-unit sigmoid output"):
        textlrp.from_keras(saved["continuous"][2], class_names=["lo", "hi"])


def test_reading_a_file_needs_neither_keras_nor_its_code(saved):
    """A path is read with json and h5py only: with Keras made unimportable the import works,
    so nothing in the file can reach Keras' deserialisation."""
    path = saved["gru_mean"][2]
    code = ("import sys; sys.modules['keras'] = None; import textlrp; "
            f"m = textlrp.from_keras({str(path)!r}); print(m.n_classes, 'keras' in sys.modules "
            "and sys.modules['keras'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(C), "False"]


def test_import_textlrp_imports_neither_keras_nor_h5py():
    code = "import sys, textlrp; print(sorted(m for m in ('keras', 'h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- refusals


class Scale(layers.Layer):
    def call(self, x):
        return x * 2.0


keras.saving.register_keras_serializable(package="textlrp_test")(Scale)


def _seq(*body, inp=None):
    return keras.Sequential([keras.Input((None,), dtype="int32") if inp is None else inp, *body])


def _functional(build, inp=None):
    inp = keras.Input((None,), dtype="int32") if inp is None else inp
    return keras.Model(inp, build(inp))


def _emb():
    return layers.Embedding(V, E)


def _attention(i):
    h = layers.LSTM(D, return_sequences=True)(_emb()(i))
    return layers.Dense(C)(layers.GlobalMaxPooling1D()(layers.Attention(name="att")([h, h])))


def _mha(i):
    h = _emb()(i)
    h = layers.MultiHeadAttention(2, 4, name="mha")(h, h)
    return layers.Dense(C)(layers.GlobalMaxPooling1D()(h))


def _return_state(i):
    _, h, _ = layers.LSTM(D, return_state=True, name="rnn")(_emb()(i))
    return layers.Dense(C)(h)


def _training_true(i):
    h = layers.LSTM(D)(_emb()(i))
    return layers.Dense(C)(layers.Dropout(0.5, name="mc")(h, training=True))


# name: (model builder, the error's pattern: the layer and the setting)
REFUSALS = {
    "mask_zero": (lambda: _seq(layers.Embedding(V, E, mask_zero=True, name="emb"),
                               layers.LSTM(D), layers.Dense(C)),
                  r"'emb' \(Embedding\): mask_zero=True"),
    "go_backwards": (lambda: _seq(_emb(), layers.LSTM(D, go_backwards=True, name="rnn"),
                                  layers.Dense(C)),
                     r"'rnn' \(LSTM\): go_backwards=True"),
    "stateful": (lambda: _seq(_emb(), layers.LSTM(D, stateful=True, name="rnn"), layers.Dense(C),
                              inp=keras.Input(batch_shape=(2, 5), dtype="int32")),
                 r"'rnn' \(LSTM\): stateful=True"),
    "activation": (lambda: _seq(_emb(), layers.GRU(D, activation="relu", name="rnn"),
                                layers.Dense(C)),
                   r"'rnn' \(GRU\): activation='relu'"),
    "recurrent_activation": (lambda: _seq(_emb(), layers.LSTM(D, name="rnn",
                                                              recurrent_activation="hard_sigmoid"),
                                          layers.Dense(C)),
                             r"'rnn' \(LSTM\): recurrent_activation='hard_sigmoid'"),
    "bidirectional_activation": (lambda: _seq(_emb(), layers.Bidirectional(
                                     layers.LSTM(D, activation="sigmoid"), name="bi"),
                                     layers.Dense(C)),
                                 r"'bi' \(Bidirectional\), its forward LSTM: activation='sigmoid'"),
    "gru_reset_after_false": (lambda: _seq(_emb(), layers.GRU(D, reset_after=False, name="rnn"),
                                           layers.Dense(C)),
                              r"'rnn' \(GRU\): reset_after=False"),
    "layer_normalization": (lambda: _seq(_emb(), layers.LSTM(D),
                                         layers.LayerNormalization(name="norm"), layers.Dense(C)),
                            r"'norm' \(LayerNormalization\): normalisation layers"),
    "attention": (lambda: _functional(_attention), r"'att' \(Attention\): attention layers"),
    "multi_head_attention": (lambda: _functional(_mha),
                             r"'mha' \(MultiHeadAttention\): attention layers"),
    "lambda": (lambda: _seq(_emb(), layers.Lambda(lambda x: x * 2, name="fn"), layers.LSTM(D),
                            layers.Dense(C)),
               r"'fn' \(Lambda\): a Lambda layer holds Python code"),
    "custom_layer": (lambda: _seq(_emb(), Scale(name="scale"), layers.LSTM(D), layers.Dense(C)),
                     r"'scale' is a custom class \('Scale'.*'textlrp_test>Scale'\)"),
    "merge_mode": (lambda: _seq(_emb(), layers.Bidirectional(layers.LSTM(D), merge_mode="sum",
                                                              name="bi"), layers.Dense(C)),
                   r"'bi' \(Bidirectional\): merge_mode='sum'"),
    "dense_tanh": (lambda: _seq(_emb(), layers.LSTM(D),
                                layers.Dense(4, activation="tanh", name="hidden"), layers.Dense(C)),
                   r"'hidden' \(Dense\): activation 'tanh'"),
    "softmax_inside": (lambda: _seq(_emb(), layers.LSTM(D), layers.Dense(4, activation="softmax"),
                                    layers.Dense(C, name="out")),
                       r"'out' \(Dense\) follows a softmax"),
    "dense_dense": (lambda: _seq(_emb(), layers.LSTM(D), layers.Dense(4),
                                 layers.Dense(C, name="out")),
                    r"'out' \(Dense\) follows another Dense layer without a ReLU"),
    "ends_with_relu": (lambda: _seq(_emb(), layers.LSTM(D),
                                    layers.Dense(C, activation="relu", name="out")),
                       r"'out' \(Dense\): the model ends with a ReLU"),
    "sequences_into_dense": (lambda: _seq(_emb(), layers.LSTM(D, return_sequences=True),
                                          layers.Dense(C, name="out")),
                             r"'out' \(Dense\) reads the outputs of every step.*return_sequences"),
    "return_state": (lambda: _functional(_return_state),
                     r"'rnn' \(LSTM\) has several outputs \(return_state=True"),
    "training_true": (lambda: _functional(_training_true),
                      r"'mc' \(Dropout\) is called with training=True"),
    "masking": (lambda: _seq(layers.Masking(name="mask"), layers.LSTM(D), layers.Dense(C),
                             inp=keras.Input((None, 3))),
                r"'mask' \(Masking\): masking"),
    "simple_rnn": (lambda: _seq(_emb(), layers.SimpleRNN(D, name="rnn"), layers.Dense(C)),
                   r"'rnn' \(SimpleRNN\): only LSTM and GRU"),
    "nested_model": (lambda: _seq(_emb(), keras.Sequential([layers.LSTM(D)], name="inner"),
                                  layers.Dense(C)),
                     r"'inner' \(Sequential\): nested models"),
    "pooling_keepdims": (lambda: _seq(_emb(), layers.LSTM(D, return_sequences=True),
                                      layers.GlobalMaxPooling1D(keepdims=True, name="pool"),
                                      layers.Dense(C)),
                         r"'pool' \(GlobalMaxPooling1D\): keepdims=True"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_name_the_layer_and_the_setting(name, tmp_path):
    build, pattern = REFUSALS[name]
    keras.utils.set_random_seed(0)
    model = build()
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(KerasImportError, match=pattern):
        textlrp.from_keras(path)
    with pytest.raises(KerasImportError, match=pattern):
        textlrp.from_keras(model)


def test_subclassed_model_is_refused(tmp_path):
    class Net(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.emb = layers.Embedding(V, E)
            self.rnn = layers.LSTM(D)
            self.out = layers.Dense(C)

        def call(self, x):
            return self.out(self.rnn(self.emb(x)))

    net = Net()
    net(np.zeros((1, 3), dtype="int32"))
    with pytest.raises(KerasImportError, match=r"the model is a custom class \('Net'"):
        textlrp.from_keras(net)


def test_not_a_keras_model():
    with pytest.raises(TypeError, match="path of a .keras file or a keras.Model"):
        textlrp.from_keras(object())


# --------------------------------------------------------------------------- hostile files


def _rewrite(src, dst, *, config=None, metadata=None, weights=None):
    """A copy of the archive ``src`` with some members replaced."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if info.filename == "metadata.json" and metadata is not None:
                data = json.dumps(metadata).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                data = weights(data)
            zout.writestr(info.filename, data)
    return dst


def test_damaged_and_hostile_files(saved, tmp_path):
    import io

    import h5py

    path = saved["lstm"][2]
    with pytest.raises(FileNotFoundError):
        textlrp.from_keras(tmp_path / "missing.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(KerasImportError, match="junk.keras: not a readable .keras"):
        textlrp.from_keras(tmp_path / "junk.keras")
    with pytest.raises(KerasImportError, match="is a directory"):
        textlrp.from_keras(tmp_path)

    # A config naming an arbitrary Python callable (the shape of Keras' CVE-2025-1550) is a
    # custom class to textlrp: refused, never resolved.
    def evil(cfg):
        cfg["config"]["layers"].insert(2, {"module": "os", "class_name": "system",
                                           "config": {"name": "x", "command": "touch pwned"},
                                           "registered_name": None})
        return cfg

    with pytest.raises(KerasImportError, match="custom class.*'os'"):
        textlrp.from_keras(_rewrite(path, tmp_path / "evil.keras", config=evil))
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")

    with pytest.raises(KerasImportError, match="saved by Keras '2.15.0'"):
        textlrp.from_keras(_rewrite(path, tmp_path / "k2.keras",
                                    metadata={"keras_version": "2.15.0"}))

    def bigger(cfg):
        cfg["config"]["layers"][2]["config"]["units"] = D + 1
        return cfg

    with pytest.raises(KerasImportError, match=r"weight 0 has shape \(6, 20\), the config needs "
                                               r"\(6, 24\)"):
        textlrp.from_keras(_rewrite(path, tmp_path / "shape.keras", config=bigger))

    # An external link would make HDF5 open another file on this machine: never followed.
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["0"] = np.zeros((D, C), np.float32)

    def linked(raw):
        buf = io.BytesIO(raw)
        with h5py.File(buf, "r+") as f:
            del f["layers/dense/vars/0"]
            f["layers/dense/vars/0"] = h5py.ExternalLink(str(other), "/0")
        return buf.getvalue()

    with pytest.raises(KerasImportError, match="weight 0 is a link"):
        textlrp.from_keras(_rewrite(path, tmp_path / "link.keras", weights=linked))

    def nan(raw):
        buf = io.BytesIO(raw)
        with h5py.File(buf, "r+") as f:
            f["layers/dense/vars/1"][0] = np.nan
        return buf.getvalue()

    with pytest.raises(KerasImportError, match=r"'dense(_\d+)?' \(Dense\): weight 1 contains NaN"):
        textlrp.from_keras(_rewrite(path, tmp_path / "nan.keras", weights=nan))


# --------------------------------------------------------------------------- command line


def test_cli_import_keras_then_explain_and_info(saved, tmp_path):
    path = saved["bilstm_max"][2]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{w}\n" for w in ["", "[UNK]"] + [f"w{i}" for i in range(V - 2)]))
    out = tmp_path / "model.npz"
    proc = run_textlrp("import-keras", str(path), "--vocab", str(vocab), "--classes", "a,b,c",
                       "--unk-token", "[UNK]", "--lowercase", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    m = textlrp.load_model(out)
    assert m.vocab[:3] == ["", "[UNK]", "w0"] and m.class_names == ["a", "b", "c"] and m.lowercase
    direct = textlrp.from_keras(path, dtype=np.float64)
    np.testing.assert_array_equal(m.predict([[2, 3, 4]]), direct.predict([[2, 3, 4]]))

    proc = run_textlrp("explain", "--model", str(out), "W3 w4 unknown", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["tokens"] == ["w3", "w4", "unknown"]
    proc = run_textlrp("info", "--model", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "scores are explained before any softmax" in proc.stdout
    assert "output_activation: softmax" in proc.stdout

    proc = run_textlrp("import-keras", str(path), "--out", str(out))
    assert_one_line_error(proc, "exists", "--force")
    proc = run_textlrp("import-keras", str(path), "--classes", "a,b", "--out", str(out), "--force")
    assert_one_line_error(proc, "2 class names for a model with 3 outputs")


def test_cli_refusal_is_one_line(tmp_path):
    keras.utils.set_random_seed(0)
    model = _seq(layers.Embedding(V, E), layers.GRU(D, reset_after=False, name="old_gru"),
                 layers.Dense(C))
    model.save(tmp_path / "m.keras")
    proc = run_textlrp("import-keras", str(tmp_path / "m.keras"), "--out", str(tmp_path / "o.npz"))
    assert_one_line_error(proc, "'old_gru' (GRU): reset_after=False")
    assert not (tmp_path / "o.npz").exists()
