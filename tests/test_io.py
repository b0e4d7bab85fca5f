"""The .npz model file: round trips, and one clear error per kind of bad file."""

from __future__ import annotations

import io as pyio
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import textlrp
from textlrp.io import (
    ModelFileError,
    default_model_path,
    read_model_file,
    save_model,
    write_model_file,
)

REPO = Path(__file__).resolve().parents[1]


def small_model(make_random_model, rng, dtype=np.float64, **kw):
    arrays = make_random_model(rng, e=4, layers=((5, True), (3, False)), head=((6, True), (None, False)),
                               V=7, C=3, dtype=dtype)
    return textlrp.from_arrays(
        arrays["embedding"], arrays["lstm_layers"], arrays["head"],
        vocab=["<unk>", "a", "b", "c", "d", "(", "\u00e9t\u00e9"], class_names=["neg", "neu", "pos"],
        unk_token="<unk>", lowercase=True, dtype=dtype, metadata={"note": "test", "n": [1, 2]}, **kw,
    )


def assert_same_model(a, b):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert len(a.lstm_layers) == len(b.lstm_layers)
    for la, lb in zip(a.lstm_layers, b.lstm_layers):
        assert len(la) == len(lb)
        for da, db in zip(la, lb):
            for key in ("W_ih", "W_hh", "b"):
                np.testing.assert_array_equal(da[key], db[key])
    for ha, hb in zip(a.head, b.head):
        np.testing.assert_array_equal(ha["W"], hb["W"])
        assert (ha["b"] is None) == (hb["b"] is None)
        if ha["b"] is not None:
            np.testing.assert_array_equal(ha["b"], hb["b"])
    assert (a.vocab, a.class_names, a.unk_token, a.lowercase, a.metadata) == (
        b.vocab, b.class_names, b.unk_token, b.lowercase, b.metadata)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, make_random_model, rng, dtype):
    model = small_model(make_random_model, rng, dtype)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = textlrp.load_model(path, dtype=dtype)
    assert_same_model(model, loaded)
    x = [["a", "b", "zzz"], [3, 1, 2, 4]]
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    # saving the loaded model again gives the same arrays and header
    path2 = tmp_path / "m2.npz"
    save_model(loaded, path2)
    a, b = read_model_file(path), read_model_file(path2)
    assert a["header"] == b["header"]


def test_float32_file_loads_exactly_as_float64(tmp_path, make_random_model, rng):
    model = small_model(make_random_model, rng, np.float32)
    model.save(tmp_path / "m.npz")
    loaded = textlrp.load_model(tmp_path / "m.npz")
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.embedding, model.embedding.astype(np.float64))


def test_file_layout(tmp_path, make_random_model, rng):
    small_model(make_random_model, rng).save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        names = sorted(n[:-4] for n in z.namelist())
    assert names == sorted([
        "embedding", "metadata",
        "lstm.0.0.W_ih", "lstm.0.0.W_hh", "lstm.0.0.b", "lstm.0.1.W_ih", "lstm.0.1.W_hh", "lstm.0.1.b",
        "lstm.1.0.W_ih", "lstm.1.0.W_hh", "lstm.1.0.b",
        "head.0.W", "head.0.b", "head.1.W",
    ])
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        meta = npz["metadata"]
        assert meta.dtype == np.uint8
        header = json.loads(meta.tobytes().decode("utf-8"))
    assert header["format"] == "textlrp-model" and header["format_version"] == 1
    assert header["gate_order"] == "ifgo" and header["dtype"] == "float64"
    assert header["architecture"] == {
        "vocab_size": 7, "embedding_dim": 4,
        "lstm": [{"input_size": 4, "hidden_sizes": [5, 5]}, {"input_size": 10, "hidden_sizes": [3]}],
        "head": [{"in_features": 3, "out_features": 6, "bias": True}, {"in_features": 6, "out_features": 3, "bias": False}],
    }
    assert header["tokenizer"] == {"lowercase": True}
    assert header["unk_token"] == "<unk>" and header["provenance"] == {"note": "test", "n": [1, 2]}


def test_name_without_npz_suffix_is_kept(tmp_path, make_random_model, rng):
    small_model(make_random_model, rng).save(tmp_path / "model.bin")
    assert (tmp_path / "model.bin").is_file() and not (tmp_path / "model.bin.npz").exists()
    textlrp.load_model(tmp_path / "model.bin")


def test_model_without_vocab(tmp_path, make_random_model, rng):
    arrays = make_random_model(rng)
    model = textlrp.from_arrays(arrays["embedding"], arrays["lstm_layers"], arrays["head"])
    model.save(tmp_path / "m.npz")
    loaded = textlrp.load_model(tmp_path / "m.npz")
    assert loaded.vocab is None and loaded.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(loaded.predict([[1, 2, 3]]), model.predict([[1, 2, 3]]))


def test_metadata_must_be_json(tmp_path, make_random_model, rng):
    arrays = make_random_model(rng)
    with pytest.raises(ValueError, match="JSON"):
        write_model_file(tmp_path / "m.npz", **arrays, metadata={"x": object()})
    with pytest.raises(ValueError, match="JSON"):
        write_model_file(tmp_path / "m.npz", **arrays, metadata={"x": float("nan")})


# --------------------------------------------------------------------------- bad files

def arrays_and_header(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(arrays["metadata"].tobytes().decode())


def rewrite(path, arrays, header=None):
    arrays = dict(arrays)
    if header is not None:
        arrays["metadata"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture
def good_file(tmp_path, make_random_model, rng):
    path = tmp_path / "good.npz"
    small_model(make_random_model, rng).save(path)
    return path


def expect_error(path, problem):
    with pytest.raises(ModelFileError, match=problem) as info:
        textlrp.load_model(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    return info.value


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        textlrp.load_model(tmp_path / "nope.npz")


def test_not_a_zip(tmp_path):
    path = tmp_path / "m.npz"
    path.write_text("hello, I am not a model")
    expect_error(path, "not an .npz")


def test_plain_npy_is_not_a_model(tmp_path):
    path = tmp_path / "m.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros(3))
    expect_error(path, "not an .npz")


def test_directory(tmp_path):
    expect_error(tmp_path, "directory")


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file(tmp_path, good_file, keep):
    data = good_file.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * keep)])
    expect_error(path, "truncated|damaged")


def test_corrupted_member(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as z:
        info = z.getinfo("embedding.npy")
    start = info.header_offset + 30 + len(info.filename) + 20
    data[start:start + 8] = b"\xff" * 8
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    expect_error(path, "damaged|unreadable")


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    arrays["embedding"] = evil
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # np.savez pickles object arrays
    expect_error(path, "pickled")
    assert not marker.exists()


def test_missing_metadata(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    del arrays["metadata"]
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", "no 'metadata'")


def test_bad_json(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    arrays["metadata"] = np.frombuffer(b"{not json", dtype=np.uint8)
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", "not valid JSON")


def test_metadata_as_0d_unicode_array_is_accepted(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    arrays["metadata"] = np.array(json.dumps(header))
    rewrite(tmp_path / "m.npz", arrays)
    textlrp.load_model(tmp_path / "m.npz")


def test_metadata_of_wrong_type(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    arrays["metadata"] = np.zeros(3)
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", "UTF-8 JSON")


def test_future_format_version(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["format_version"] = 2
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "newer textlrp")


def test_wrong_format_name(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["format"] = "something-else"
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "'format'")


def test_missing_array(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    del arrays["lstm.1.0.W_hh"]
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", r"missing arrays \['lstm.1.0.W_hh'\]")


def test_extra_array(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    arrays["head.1.b"] = np.zeros(3)
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", r"unexpected arrays \['head.1.b'\]")


def test_wrong_shape(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    arrays["lstm.0.1.W_hh"] = arrays["lstm.0.1.W_hh"][:, :4]
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", r"'lstm.0.1.W_hh' has shape \(20, 4\), the architecture needs \(20, 5\)")


def test_wrong_dtype(tmp_path, good_file):
    arrays, _ = arrays_and_header(good_file)
    arrays["head.0.W"] = arrays["head.0.W"].astype(np.float32)
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", "'head.0.W' has dtype float32, metadata says float64")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values(tmp_path, good_file, value):
    arrays, _ = arrays_and_header(good_file)
    arrays["lstm.0.0.b"] = arrays["lstm.0.0.b"].copy()
    arrays["lstm.0.0.b"][3] = value
    rewrite(tmp_path / "m.npz", arrays)
    expect_error(tmp_path / "m.npz", "non-finite")


def test_vocab_size_mismatch(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["vocab"] = header["vocab"][:-1]
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "vocab has 6 tokens but the embedding has 7 rows")


def test_class_count_mismatch(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["class_names"] = ["neg", "pos"]
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "2 class_names but the head has 3 outputs")


def test_architecture_inconsistent_with_itself(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["architecture"]["lstm"][1]["input_size"] = 5
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "LSTM layer 1 input_size is 5, but its input has 10 features")


def test_unk_token_not_in_vocab(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["unk_token"] = "<oov>"
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "unk_token '<oov>' is not in the vocab")


def test_other_gate_order_refused(tmp_path, good_file):
    arrays, header = arrays_and_header(good_file)
    header["gate_order"] = "igfo"
    rewrite(tmp_path / "m.npz", arrays, header)
    expect_error(tmp_path / "m.npz", "gate_order")


def test_save_refuses_inconsistent_model_before_writing(tmp_path, make_random_model, rng):
    arrays = make_random_model(rng)
    with pytest.raises(ModelFileError, match="vocab has 2 tokens"):
        write_model_file(tmp_path / "m.npz", **arrays, vocab=["a", "b"])
    assert not (tmp_path / "m.npz").exists()


def test_in_memory_buffer_is_not_supported_but_path_like_is(tmp_path, good_file):
    textlrp.load_model(str(good_file))
    with pytest.raises((TypeError, ValueError)):
        textlrp.load_model(pyio.BytesIO(good_file.read_bytes()))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bundled model

def test_default_model_path_points_to_bundled_file():
    path = default_model_path()
    assert path.name == "sst5-bilstm.npz" and path.is_file()


def test_default_model_loads_from_another_directory(tmp_path):
    code = (
        "import textlrp, sys\n"
        "m = textlrp.load_model()\n"
        "e = m.explain(\"don't waste your money\")\n"
        "print(e.prediction_name)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("very negative", "negative")
