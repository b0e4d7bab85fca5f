"""The model file: round trips of every architecture (format 2), format-1 files, the bundled
model and its card, and hostile files.

Every named malformation raises ModelFileError, and those that declare large data are refused
before it is read (tracemalloc bounds); a seeded suite of a few hundred corrupted variants of
a valid file either loads the identical model or raises ModelFileError, each within a time and
memory bound; `textlrp info` prints one line and exits 2 for a bad file, and never prints a
control character that came from the file.
"""

from __future__ import annotations

import copy
import io as pyio
import json
import os
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import textlrp
from textlrp import io as tio
from textlrp.io import (
    ModelFileError,
    default_model_path,
    read_model_file,
    save_model,
    write_model_file,
)
from textlrp.spec import CELLS, Attention, Dense, Direction, ModelSpec, Recurrent

REPO = Path(__file__).resolve().parents[1]
V1_FILE = REPO / "tests" / "data" / "format-v1.npz"  # written by textlrp 0.1's format-1 writer
VOCAB = ["<unk>", "a", "b", "c", "d", "(", "\u00e9t\u00e9"]
CLASSES = ["neg", "neu", "pos"]
EXTRAS = {"vocab": VOCAB, "class_names": CLASSES, "unk_token": "<unk>", "lowercase": True,
          "metadata": {"note": "test", "n": [1, 2]}, "card": "# Card\n\nline two \u00e9\n"}
MB = 2**20


def make_spec(rng, cell="lstm", pooling="last", embedding=True, layers=((5, True), (3, False)),
              head=((6, True), (None, False)), V=7, e=4, C=3, A=4, dtype=np.float64):
    """A random ModelSpec (the last head layer has C outputs)."""
    def rand(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(dtype)

    G, n_in, rec = len(CELLS[cell]), e, []
    for d, bidirectional in layers:
        rec.append(Recurrent(cell, tuple(Direction(rand(G * d, n_in), rand(G * d, d), rand(G * d),
                                                   rand(G * d))
                                         for _ in range(2 if bidirectional else 1))))
        n_in = d * (2 if bidirectional else 1)
    attention = Attention(rand(A, n_in), rand(A), rand(A)) if pooling == "attention" else None
    dense = []
    for k, (out, bias) in enumerate(head):
        out = C if k == len(head) - 1 else out
        dense.append(Dense(rand(out, n_in), rand(out) if bias else None))
        n_in = out
    return ModelSpec(rand(V, e) if embedding else None, tuple(rec), tuple(dense), pooling=pooling,
                     attention=attention, input_size=0 if embedding else e)


def assert_same_spec(a, b):
    assert a.describe() == b.describe()
    arrays_a, arrays_b = tio._spec_arrays(a), tio._spec_arrays(b)
    assert list(arrays_a) == list(arrays_b)
    for name, arr in arrays_a.items():
        assert arr.dtype == arrays_b[name].dtype, name
        np.testing.assert_array_equal(arr, arrays_b[name], err_msg=name)


@pytest.fixture
def good_file(tmp_path, rng):
    path = tmp_path / "good.npz"
    write_model_file(path, make_spec(rng), **EXTRAS)
    return path


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("embedding", [True, False])
def test_every_architecture_round_trips_exactly(tmp_path, rng, cell, pooling, embedding):
    spec = make_spec(rng, cell=cell, pooling=pooling, embedding=embedding, C=1 if embedding else 3)
    extras = {"vocab": VOCAB if embedding else None, "unk_token": "<unk>" if embedding else None,
              "class_names": None if embedding else CLASSES, "lowercase": embedding,
              "metadata": {"cell": cell}, "card": None if embedding else "card"}
    write_model_file(tmp_path / "m.npz", spec, **extras)
    got, got_extras = read_model_file(tmp_path / "m.npz")
    assert_same_spec(spec.checked(), got)
    assert got_extras == extras
    assert all(not a.flags.writeable for a in tio._spec_arrays(got).values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_round_trip_is_exact_and_keeps_the_card(tmp_path, rng, dtype):
    spec = make_spec(rng, dtype=dtype)
    write_model_file(tmp_path / "m.npz", spec, **EXTRAS)
    model = textlrp.load_model(tmp_path / "m.npz", dtype=dtype)
    assert model.card == EXTRAS["card"] and model.metadata == EXTRAS["metadata"]
    model.save(tmp_path / "m2.npz")
    again = textlrp.load_model(tmp_path / "m2.npz", dtype=dtype)
    x = [["a", "b", "zzz"], [3, 1, 2, 4]]
    np.testing.assert_array_equal(model.predict(x), again.predict(x))
    spec2, extras2 = read_model_file(tmp_path / "m2.npz")
    assert extras2 == EXTRAS
    # the Model keeps both LSTM biases (the engine adds them), so the resaved file is the same
    assert_same_spec(spec2, spec.checked(dtype))
    save_model(again, tmp_path / "m3.npz")
    assert_same_spec(read_model_file(tmp_path / "m3.npz")[0], spec2)


def test_float32_file_loads_exactly_as_float64(tmp_path, rng):
    spec = make_spec(rng, dtype=np.float32)
    write_model_file(tmp_path / "m.npz", spec, **EXTRAS)
    loaded = textlrp.load_model(tmp_path / "m.npz")
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.embedding, spec.embedding.astype(np.float64))


def test_file_layout(tmp_path, rng):
    spec = make_spec(rng, cell="gru", pooling="attention", layers=((5, True), (3, False)))
    write_model_file(tmp_path / "m.npz", spec, **EXTRAS)
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        names = [n[:-4] for n in z.namelist()]
    rnn = [f"rnn.{li}.{di}.{key}" for li, di in ((0, 0), (0, 1), (1, 0))
           for key in ("W_ih", "W_hh", "b_ih", "b_hh")]
    assert names == ["metadata", "embedding", *rnn, "attention.W", "attention.b", "attention.v",
                     "head.0.W", "head.0.b", "head.1.W"]
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert npz["metadata"].dtype == np.uint8
        header = json.loads(npz["metadata"].tobytes().decode("utf-8"))
        assert npz["rnn.0.1.W_ih"].shape == (15, 4) and npz["attention.W"].shape == (4, 3)
    assert header == {
        "format": "textlrp-model", "format_version": 2,
        "architecture": {"input": "embedding", "vocab_size": 7, "input_size": 4,
                         "layers": [{"cell": "gru", "directions": 2, "hidden": 5},
                                    {"cell": "gru", "directions": 1, "hidden": 3}],
                         "pooling": "attention", "attention_size": 4,
                         "head": [{"in": 3, "out": 6, "bias": True},
                                  {"in": 6, "out": 3, "bias": False}],
                         "n_outputs": 3},
        "gate_order": {"gru": "rzn"}, "dtype": "float64", "vocab": VOCAB, "unk_token": "<unk>",
        "class_names": CLASSES, "tokenizer": {"lowercase": True},
        "provenance": {"note": "test", "n": [1, 2]}, "card": EXTRAS["card"],
    }


def test_class_names_default_and_regression(tmp_path, rng):
    write_model_file(tmp_path / "c.npz", make_spec(rng))
    assert read_model_file(tmp_path / "c.npz")[1]["class_names"] == ["0", "1", "2"]
    write_model_file(tmp_path / "r.npz", make_spec(rng, C=1, embedding=False))
    spec, extras = read_model_file(tmp_path / "r.npz")
    assert extras["class_names"] is None and spec.n_outputs == 1 and extras["vocab"] is None


def test_name_without_npz_suffix_is_kept(tmp_path, rng):
    write_model_file(tmp_path / "model.bin", make_spec(rng))
    assert (tmp_path / "model.bin").is_file() and not (tmp_path / "model.bin.npz").exists()
    textlrp.load_model(tmp_path / "model.bin")


def test_model_without_vocab(tmp_path, rng):
    write_model_file(tmp_path / "m.npz", make_spec(rng))
    loaded = textlrp.load_model(tmp_path / "m.npz")
    assert loaded.vocab is None and loaded.class_names == ["0", "1", "2"] and loaded.card is None
    loaded.save(tmp_path / "m2.npz")
    np.testing.assert_array_equal(textlrp.load_model(tmp_path / "m2.npz").predict([[1, 2, 3]]),
                                  loaded.predict([[1, 2, 3]]))


def test_writer_argument_errors(tmp_path, rng, make_random_model):
    spec = make_spec(rng)
    with pytest.raises(ValueError, match="JSON"):
        write_model_file(tmp_path / "m.npz", spec, metadata={"x": object()})
    with pytest.raises(ValueError, match="JSON"):
        write_model_file(tmp_path / "m.npz", spec, metadata={"x": float("nan")})
    with pytest.raises(TypeError, match="card"):
        write_model_file(tmp_path / "m.npz", spec, card=b"bytes")
    with pytest.raises(TypeError, match="ModelSpec"):
        write_model_file(tmp_path / "m.npz", {"embedding": 1})
    with pytest.raises(TypeError, match="not both"):
        write_model_file(tmp_path / "m.npz", spec, **make_random_model(rng))
    with pytest.raises(ModelFileError, match="vocab has 2 entries but the embedding has 7 rows"):
        write_model_file(tmp_path / "m.npz", spec, vocab=["a", "b"])
    with pytest.raises(ModelFileError, match="nested more than 64 levels"):
        write_model_file(tmp_path / "m.npz", spec,
                         metadata={"deep": json.loads("[" * 70 + "]" * 70)})
    assert not (tmp_path / "m.npz").exists()


def test_format_1_keywords_still_write(tmp_path, rng, make_random_model):
    """textlrp.train (and textlrp 0.1 callers) pass embedding/lstm_layers/head."""
    arrays = make_random_model(rng, layers=((3, True),), V=7)
    write_model_file(tmp_path / "m.npz", **arrays, vocab=VOCAB, unk_token="<unk>")
    spec, _ = read_model_file(tmp_path / "m.npz")
    for layer, rec in zip(arrays["lstm_layers"], spec.layers):
        for d, direction in zip(layer, rec.directions):
            np.testing.assert_array_equal(direction.b_ih, d["b"])
            assert not direction.b_hh.any()
    model = textlrp.from_arrays(arrays["embedding"], arrays["lstm_layers"], arrays["head"])
    np.testing.assert_array_equal(textlrp.load_model(tmp_path / "m.npz").predict([[1, 2, 6]]),
                                  model.predict([[1, 2, 6]]))


# --------------------------------------------------------------------------- format 1


def test_format_1_file_loads_with_b_hh_zero():
    spec, extras = read_model_file(V1_FILE)
    with np.load(V1_FILE, allow_pickle=False) as npz:
        raw = {k: npz[k] for k in npz.files}
    header = json.loads(raw["metadata"].tobytes())
    assert header["format_version"] == 1
    np.testing.assert_array_equal(spec.embedding, raw["embedding"])
    for li, rec in enumerate(spec.layers):
        for di, d in enumerate(rec.directions):
            for key, value in (("W_ih", d.W_ih), ("W_hh", d.W_hh), ("b", d.b_ih)):
                np.testing.assert_array_equal(value, raw[f"lstm.{li}.{di}.{key}"])
            assert d.b_hh.shape == d.b_ih.shape and not d.b_hh.any()
    assert extras == {"vocab": header["vocab"], "class_names": header["class_names"],
                      "unk_token": "<unk>", "lowercase": True, "metadata": header["provenance"],
                      "card": None}
    # the same numbers through the engine: the file and the raw arrays give identical scores
    layers = [[{k: raw[f"lstm.{li}.{di}.{k}"] for k in ("W_ih", "W_hh", "b")}
               for di in range(len(layer["hidden_sizes"]))]
              for li, layer in enumerate(header["architecture"]["lstm"])]
    head = [{"W": raw["head.0.W"], "b": raw["head.0.b"]}, {"W": raw["head.1.W"], "b": None}]
    direct = textlrp.from_arrays(raw["embedding"], layers, head)
    x = [[1, 2, 3, 0, 5], [4], [2, 2, 2]]
    np.testing.assert_array_equal(textlrp.load_model(V1_FILE).predict(x), direct.predict(x))


def test_format_1_resaved_as_format_2_is_identical(tmp_path):
    model = textlrp.load_model(V1_FILE)
    model.save(tmp_path / "v2.npz")
    assert_same_spec(read_model_file(tmp_path / "v2.npz")[0], read_model_file(V1_FILE)[0])
    np.testing.assert_array_equal(textlrp.load_model(tmp_path / "v2.npz").predict([[1, 5, 2]]),
                                  model.predict([[1, 5, 2]]))


def rewrite_header(src, dst, mutate=None, text=None):
    """Copy a model file with its JSON header changed by ``mutate(header)`` or replaced by
    ``text`` (str or bytes); the other members are copied byte for byte."""
    members = read_members(src)
    if text is None:
        header = json.loads(npy_payload(members["metadata.npy"]))
        mutate(header)
        text = json.dumps(header, ensure_ascii=False)
    raw = text.encode("utf-8") if isinstance(text, str) else text
    members["metadata.npy"] = npy_bytes(np.frombuffer(raw, dtype=np.uint8))
    write_zip(dst, list(members.items()))
    return dst


@pytest.mark.parametrize("mutate, problem", [
    (lambda h: h["architecture"]["lstm"][1].update(input_size=5),
     "LSTM layer 1 input_size is 5, but its input has 6 features"),
    (lambda h: h["architecture"]["lstm"][0].update(hidden_sizes=[3, 4]), "same hidden size"),
    (lambda h: h["architecture"]["lstm"][0].update(hidden_sizes=[3.0, 3]), "integer"),
    (lambda h: h.update(gate_order="igfo"), "gate_order"),
    (lambda h: h.update(class_names=None), "may be null only"),
    (lambda h: h.pop("provenance"), "lacks 'provenance'"),
    (lambda h: h.update(card="a card"), "unknown keys 'card'"),
])
def test_format_1_header_is_checked(tmp_path, mutate, problem):
    expect_error(rewrite_header(V1_FILE, tmp_path / "m.npz", mutate), problem)


# --------------------------------------------------------------------------- bundled model


def test_default_model_path_points_to_bundled_file():
    path = default_model_path()
    assert path.name == "sst5-bilstm.npz" and path.is_file()


def test_bundled_model_is_format_2_and_carries_its_card():
    path = default_model_path()
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(npz["metadata"].tobytes())["format_version"] == 2
    spec, extras = read_model_file(path)
    card_file = path.parent / "MODEL_CARD.md"  # installed next to the model, as in the checkout
    assert extras["card"] == card_file.read_text(encoding="utf-8")
    assert extras["card"].startswith("# Model card: sst5-bilstm.npz")
    assert all(not d.b_hh.any() for r in spec.layers for d in r.directions)
    assert spec.dtype == np.float32 and extras["class_names"][0] == "very negative"
    model = textlrp.load_model()
    assert model.card == extras["card"]


def test_default_model_loads_from_another_directory(tmp_path):
    code = (
        "import textlrp, sys\n"
        "m = textlrp.load_model()\n"
        "e = m.explain(\"don't waste your money\")\n"
        "print(e.prediction_name)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() in ("very negative", "negative")


# --------------------------------------------------------------------------- crafting files


def read_members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def npy_bytes(arr, **header):
    """The .npy encoding of ``arr``; ``header`` overrides the npy header's dict entries."""
    buf = pyio.BytesIO()
    if header:
        d = {**np.lib.format.header_data_from_array_1_0(arr), **header}
        np.lib.format.write_array_header_1_0(buf, d)
        buf.write(np.ascontiguousarray(arr).tobytes())
    else:
        np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_payload(data):
    arr = np.load(pyio.BytesIO(data), allow_pickle=False)
    return arr.tobytes()


def write_zip(path, members, method=zipfile.ZIP_DEFLATED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(path, "w", method) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def raw_zip(path, entries):
    """A zip written field by field: ``entries`` of (name, compressed chunks, crc, compressed
    size, size); deflate, no data descriptor. Sizes are whatever the caller declares."""
    directory, offset = [], 0
    with open(path, "wb") as f:
        for name, chunks, crc, csize, size in entries:
            bname = name.encode()
            f.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, csize,
                                size, len(bname), 0) + bname)
            f.writelines(chunks)
            directory.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0,
                                         0x21, crc, csize, size, len(bname), 0, 0, 0, 0, 0,
                                         offset) + bname)
            offset = f.tell()
        cd = b"".join(directory)
        f.write(cd + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                                 len(cd), offset, 0))
    return path


def deflated(name, data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return (name, [body], zlib.crc32(data), len(body), len(data))


ZERO_CHUNK = 4 * MB


def zero_bomb(name, prefix, zero_bytes):
    """A deflated member ``prefix`` + ``zero_bytes`` zeros without compressing them all: after a
    full flush the compressor restarts, so every 4 MiB of zeros deflates to the same bytes."""
    assert zero_bytes % ZERO_CHUNK == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(ZERO_CHUNK)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    n = zero_bytes // ZERO_CHUNK
    crc = zlib.crc32(prefix)
    for _ in range(n):
        crc = zlib.crc32(zeros, crc)
    chunks = [head, *([block] * n), tail]
    return (name, chunks, crc, sum(map(len, chunks)), len(prefix) + zero_bytes)


def with_members(good, extra=(), header=None, drop=()):
    """Entries for raw_zip: the good file's members (header replaced), minus ``drop``, plus
    ``extra``."""
    members = read_members(good)
    if header is not None:
        members["metadata.npy"] = npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
    return [deflated(n, d) for n, d in members.items() if n not in drop] + list(extra)


def header_of(path):
    return json.loads(npy_payload(read_members(path)["metadata.npy"]))


def expect_error(path, problem, max_peak=None):
    """Reading ``path`` raises ModelFileError matching ``problem`` (naming the file), with a
    tracemalloc peak below ``max_peak`` bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=problem) as info:
            read_model_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)
    if max_peak is not None:
        assert peak < max_peak, f"peak {peak / MB:.1f} MB"
    with pytest.raises(ModelFileError):
        textlrp.load_model(path)
    return info.value


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        textlrp.load_model(tmp_path / "nope.npz")


@pytest.mark.parametrize("data", [b"", b"hello, I am not a model", b"PK\x05\x06"])
def test_not_a_zip(tmp_path, data):
    path = tmp_path / "m.npz"
    path.write_bytes(data)
    expect_error(path, "not an .npz")


def test_plain_npy_is_not_a_model(tmp_path):
    path = tmp_path / "m.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros(3))
    expect_error(path, "not an .npz")


def test_directory(tmp_path):
    expect_error(tmp_path, "directory")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_without_reading(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    expect_error(device, "not a regular file")
    link = tmp_path / "model.npz"
    link.symlink_to(device)
    expect_error(link, "not a regular file")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            read_model_file(fifo)
        except Exception as exc:  # noqa: BLE001 -- recorded and checked below
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): let it go with a writer before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], ModelFileError) and "not a regular file" in str(outcome[0])


@pytest.mark.parametrize("keep", [0.01, 0.3, 0.9, 0.999])
def test_truncated_file(tmp_path, good_file, keep):
    data = good_file.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * keep)])
    expect_error(path, "truncated|damaged|not an .npz")


def test_corrupted_member_data(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as z:
        info = z.getinfo("embedding.npy")
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len + 40  # inside the deflated data
    data[start:start + 8] = b"\xff" * 8
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    expect_error(path, "'embedding' is (damaged|not npy data)")


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path, good_file):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    buf = pyio.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    members = read_members(good_file)
    members["embedding.npy"] = buf.getvalue()
    expect_error(write_zip(tmp_path / "evil.npz", list(members.items())),
                 "'embedding' has dtype 'object'")
    assert not marker.exists()


@pytest.mark.parametrize("override, problem", [
    ({"descr": "|O"}, "dtype 'object'"),
    ({"descr": "<f4"}, "dtype 'float32', the header says float64"),
    ({"descr": ">f8"}, "dtype '>f8'"),
    ({"fortran_order": True}, "Fortran order"),
    ({"shape": (4, 7)}, r"shape \(4, 7\), the architecture needs \(7, 4\)"),
    ({"shape": (7, 5)}, r"shape \(7, 5\)"),
    ({"shape": (2**40, 4)}, r"shape \(1099511627776, 4\)"),
])
def test_npy_header_is_checked_before_the_data(tmp_path, good_file, override, problem):
    members = read_members(good_file)
    emb = np.load(pyio.BytesIO(members["embedding.npy"]))
    members["embedding.npy"] = npy_bytes(emb, **override)
    expect_error(write_zip(tmp_path / "m.npz", list(members.items())), problem)


@pytest.mark.parametrize("data", [b"", b"\x93NUMPY", b"not npy data at all" * 10,
                                  b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 70000,
                                  b"\x93NUMPY\x03\x00\x10\x00\x00\x00{}"])
def test_member_that_is_not_npy_data(tmp_path, good_file, data):
    members = read_members(good_file)
    members["head.0.W.npy"] = data
    expect_error(write_zip(tmp_path / "m.npz", list(members.items())),
                 "'head.0.W' (is not npy data|has npy format version)")


def test_member_names(tmp_path, good_file):
    members = read_members(good_file)
    expect_error(write_zip(tmp_path / "a.npz", [*members.items(), ("README.txt", b"hi")]),
                 "member 'README.txt' is not npy data")
    expect_error(write_zip(tmp_path / "b.npz", [*members.items(), ("head.1.b.npy",
                                                                   npy_bytes(np.zeros(3)))]),
                 "unknown members 'head.1.b'")
    del members["rnn.1.0.W_hh.npy"]
    expect_error(write_zip(tmp_path / "c.npz", list(members.items())),
                 "missing arrays 'rnn.1.0.W_hh'")
    del members["metadata.npy"]
    expect_error(write_zip(tmp_path / "d.npz", list(members.items())), "no 'metadata' member")


@pytest.mark.parametrize("name", ["embedding.npy", "metadata.npy"])
def test_duplicate_members_are_refused(tmp_path, good_file, name):
    members = read_members(good_file)
    # the second copy would win in zipfile's name lookup: refused, not silently resolved
    path = write_zip(tmp_path / "m.npz", [*members.items(), (name, members[name])])
    expect_error(path, f"duplicate members '{name}'")


def test_unsupported_compression_and_encryption(tmp_path, good_file):
    members = list(read_members(good_file).items())
    expect_error(write_zip(tmp_path / "bz.npz", members, zipfile.ZIP_BZIP2),
                 "unsupported compression")
    data = bytearray(good_file.read_bytes())
    cd = data.find(b"PK\x01\x02")
    data[cd + 8] |= 1  # the central directory's "encrypted" flag of the first member
    (tmp_path / "enc.npz").write_bytes(bytes(data))
    expect_error(tmp_path / "enc.npz", "encrypted")


def central_entry(data, name):
    """Offset of ``name``'s central directory entry."""
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46: pos + 46 + n] == name.encode():
            return pos
        pos = data.find(b"PK\x01\x02", pos + 1)
    raise KeyError(name)


@pytest.mark.parametrize("field, value, problem", [
    (24, 3 * 2**30, "declare .* bytes of data"),  # size: 3 GiB
    (24, 1000, "declares 1000 bytes"),
    (20, 2**31, "more bytes than the file has"),  # compressed size
    (42, 2**31, "more bytes than the file has"),  # local header offset
    (42, 0, "overlap|damaged"),
])
def test_declared_sizes_are_checked(tmp_path, good_file, field, value, problem):
    data = bytearray(good_file.read_bytes())
    struct.pack_into("<I", data, central_entry(data, "embedding.npy") + field, value)
    (tmp_path / "m.npz").write_bytes(bytes(data))
    expect_error(tmp_path / "m.npz", problem, max_peak=4 * MB)


def test_too_many_members(tmp_path, good_file):
    entries = with_members(good_file) + [deflated(f"x{i}.npy", b"") for i in range(2000)]
    expect_error(raw_zip(tmp_path / "m.npz", entries), f"lists {len(entries)} members",
                 max_peak=4 * MB)


def test_overlapping_members(tmp_path, good_file):
    entries = with_members(good_file)
    raw_zip(tmp_path / "m.npz", entries)
    data = bytearray((tmp_path / "m.npz").read_bytes())
    # point head.0.b at head.0.W's local header: two names, one stretch of bytes
    target = struct.unpack_from("<I", data, central_entry(data, "head.0.W.npy") + 42)[0]
    struct.pack_into("<I", data, central_entry(data, "head.0.b.npy") + 42, target)
    (tmp_path / "m.npz").write_bytes(bytes(data))
    expect_error(tmp_path / "m.npz", "overlap")


# --------------------------------------------------------------------------- zip bombs


@pytest.fixture(scope="module")
def bomb_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "good.npz"
    write_model_file(path, make_spec(np.random.default_rng(5)), **EXTRAS)
    return path


def embedding_bomb(good, path, zero_bytes):
    """A valid-looking file whose embedding is ``zero_bytes`` of zeros: vocab_size, the npy
    header and the declared size all agree (an ids-only model), so only the size guard stands
    between the reader and the data."""
    header = header_of(good)
    rows = zero_bytes // (4 * 8)
    header["architecture"]["vocab_size"] = rows
    header.update(vocab=None, unk_token=None)
    prefix = npy_header("<f8", (rows, 4))
    entries = with_members(good, header=header, drop=("embedding.npy",))
    return raw_zip(path, [*entries, zero_bomb("embedding.npy", prefix, zero_bytes)])


@pytest.fixture(scope="module")
def bomb_file(tmp_path_factory, bomb_source):
    return embedding_bomb(bomb_source, tmp_path_factory.mktemp("bomb") / "bomb.npz", 3 * 2**30)


def test_zip_bomb_3_gib_member_is_refused_with_little_memory(bomb_file):
    path = bomb_file
    assert path.stat().st_size < 8 * MB
    with zipfile.ZipFile(path) as z:  # a real archive: zipfile would inflate 3 GiB
        assert z.getinfo("embedding.npy").file_size > 3 * 2**30
        with z.open("embedding.npy") as m:
            assert m.read(6) == b"\x93NUMPY"
    start = time.perf_counter()
    expect_error(path, "declare .* bytes of data in a file of .* bytes", max_peak=8 * MB)
    assert time.perf_counter() - start < 5


def test_zip_bomb_peak_rss_in_a_fresh_process(bomb_file):
    path = bomb_file
    code = ("import resource, sys, textlrp\n"
            "from textlrp.io import ModelFileError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    textlrp.load_model(sys.argv[1])\n"
            "except ModelFileError:\n    pass\n"
            "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=120, check=True)
    before, after = map(int, out.stdout.split())
    assert (after - before) * 1024 < 100 * MB  # ru_maxrss is in KiB on Linux


def npy_header(descr, shape):
    """Just the header of an .npy member (the data follows it)."""
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("case, name, prefix, problem", [
    ("shape", "embedding.npy", npy_header("<f8", (60 * MB // 32, 4)),
     r"shape \(1966080, 4\), the architecture needs \(7, 4\)"),
    ("unknown", "junk.npy", npy_header("|u1", (60 * MB,)), "unknown members 'junk'"),
    ("header", "metadata.npy", npy_header("|u1", (60 * MB,)),
     "must be 1-D with at most 16777216 bytes"),
    ("size", "embedding.npy", npy_header("<f8", (7, 4)),
     r"declares 62914688 bytes; its \(7, 4\) array needs 352"),
], ids=["shape", "unknown", "header", "size"])
def test_large_members_are_refused_before_their_data(tmp_path, bomb_source, case, name, prefix,
                                                     problem):
    """60 MiB of zeros (under the size guard's floor): the npy header, the member list and the
    header cap must refuse it without inflating it."""
    drop = () if case == "unknown" else (name,)
    entries = [*with_members(bomb_source, drop=drop), zero_bomb(name, prefix, 60 * MB)]
    expect_error(raw_zip(tmp_path / "m.npz", entries), problem, max_peak=4 * MB)


def test_header_size_cap(tmp_path, good_file):
    text = json.dumps(header_of(good_file)) + " " * (tio.MAX_HEADER_BYTES + 10)
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", text=text), "at most 16777216",
                 max_peak=4 * MB)


# --------------------------------------------------------------------------- the JSON header


def test_missing_metadata_and_bad_json(tmp_path, good_file):
    expect_error(rewrite_header(good_file, tmp_path / "a.npz", text="{not json"),
                 "not valid JSON")
    expect_error(rewrite_header(good_file, tmp_path / "b.npz", text=b"\xff\xfe{}"), "not UTF-8")
    expect_error(rewrite_header(good_file, tmp_path / "c.npz", text="[1, 2]"), "JSON object")
    members = read_members(good_file)
    members["metadata.npy"] = npy_bytes(np.array(json.dumps(header_of(good_file))))  # 0-d str
    expect_error(write_zip(tmp_path / "d.npz", list(members.items())), "'metadata' has dtype")
    members["metadata.npy"] = npy_bytes(np.zeros(3))
    expect_error(write_zip(tmp_path / "e.npz", list(members.items())), "'metadata' has dtype")


@pytest.mark.parametrize("depth, ok", [(10_000, False), (100, False), (63, False), (62, True)])
def test_json_nesting_depth_is_capped(tmp_path, good_file, depth, ok):
    """The header is level 1, provenance 2, so a list nested ``depth`` deep in it reaches
    depth + 2: 64 is the most allowed."""
    nested = "[" * depth + "]" * depth
    text = json.dumps(header_of(good_file)).replace('"provenance": {',
                                                     f'"provenance": {{"deep": {nested}, ', 1)
    path = rewrite_header(good_file, tmp_path / "m.npz", text=text)
    if ok:
        assert len(json.dumps(read_model_file(path)[1]["metadata"]["deep"])) == 2 * depth
    else:
        expect_error(path, "nested more than 64 levels")


@pytest.mark.parametrize("value, problem", [
    ("Infinity", "not a JSON number"), ("-Infinity", "not a JSON number"),
    ("NaN", "not a JSON number"), ("1e400", "out of range"), ("9" * 5000, "not valid JSON"),
    ("16582.5", "integer"), ("7.0", "integer"), ("true", "integer"), ('"7"', "integer"),
    ("null", "integer"), ("-7", "integer"), ("0", "integer"), (str(10**30), "integer"),
    ("[7]", "integer"),
])
def test_sizes_must_be_json_integers(tmp_path, good_file, value, problem):
    text = json.dumps(header_of(good_file)).replace('"vocab_size": 7', f'"vocab_size": {value}')
    assert value in text
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", text=text), problem)


HEADER_KEYS = sorted(tio._V2_KEYS)


@pytest.mark.parametrize("key", HEADER_KEYS)
def test_every_header_key_is_required(tmp_path, good_file, key):
    problem = "'format' is None" if key == "format" else \
        "format_version" if key == "format_version" else f"lacks '{key}'"
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", lambda h: h.pop(key)), problem)


@pytest.mark.parametrize("where", ["", "architecture", "layer", "head", "tokenizer"])
def test_unknown_keys_are_refused(tmp_path, good_file, where):
    def mutate(h):
        target = {"": h, "architecture": h["architecture"], "layer": h["architecture"]["layers"][0],
                  "head": h["architecture"]["head"][0], "tokenizer": h["tokenizer"]}[where]
        target["surprise"] = 1
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", mutate),
                 "unknown keys 'surprise'")


def test_duplicate_json_keys_are_refused(tmp_path, good_file):
    text = json.dumps(header_of(good_file))
    text = text[:-1] + ', "dtype": "float32"}'
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", text=text), "duplicate key 'dtype'")


def arch(h):
    return h["architecture"]


@pytest.mark.parametrize("mutate, problem", [
    (lambda h: h.update(format="something-else"), "'format' is 'something-else'"),
    (lambda h: h.update(format_version=3), "newer textlrp"),
    (lambda h: h.update(format_version=0), "format_version"),
    (lambda h: h.update(format_version="2"), "format_version"),
    (lambda h: h.update(format_version=1), "unknown keys 'card'"),
    (lambda h: h.update(dtype="float16"), "dtype 'float16'"),
    (lambda h: h.update(dtype="float32"), "has dtype 'float64', the header says float32"),
    (lambda h: h.update(gate_order={"lstm": "igfo"}), "gate_order"),
    (lambda h: h.update(gate_order="ifgo"), "gate_order"),
    (lambda h: h.update(tokenizer={"lowercase": 1}), "boolean 'lowercase'"),
    (lambda h: h.update(provenance=[1]), "'provenance' must be a JSON object"),
    (lambda h: h.update(card=5), "'card' must be a string"),
    (lambda h: h.update(vocab=VOCAB[:-1]), "vocab has 6 entries but the embedding has 7 rows"),
    (lambda h: h.update(vocab=["a"] * 7), "'vocab' has duplicates"),
    (lambda h: h.update(vocab=[1] * 7), "'vocab' must be a list of strings"),
    (lambda h: h.update(unk_token="<oov>"), "unk_token '<oov>' is not in the vocab"),
    (lambda h: h.update(vocab=None), "unk_token '<unk>' is not in the vocab"),
    (lambda h: h.update(class_names=["neg", "pos"]),
     "class_names has 2 entries but the head has 3 outputs"),
    (lambda h: h.update(class_names=None), "may be null only"),
    (lambda h: h.update(class_names=["a", "a", "b"]), "duplicates"),
    (lambda h: arch(h).update(input="pixels"), "'pixels' is not 'embedding' or 'continuous'"),
    (lambda h: arch(h).update(input="continuous"), "vocab_size must be an integer in \\[0, 0\\]"),
    (lambda h: arch(h).update(input_size=5), r"'embedding' has shape \(7, 4\)"),
    (lambda h: arch(h)["layers"][0].update(cell="rnn"), "unknown cell 'rnn'"),
    (lambda h: arch(h)["layers"][0].update(cell="gru"), "gate_order"),
    (lambda h: arch(h)["layers"][0].update(directions=3), "directions must be"),
    (lambda h: arch(h)["layers"][1].update(hidden=4), "head layer 0 in is 3"),
    (lambda h: arch(h).update(layers=[]), "non-empty list"),
    (lambda h: arch(h).update(pooling="sum"), "unknown pooling 'sum'"),
    (lambda h: arch(h).update(attention_size=4), "attention_size must be null"),
    (lambda h: arch(h)["head"][0].update(bias=False), "unknown members 'head.0.b'"),
    (lambda h: arch(h)["head"][0].update(bias=1), "bias must be true or false"),
    (lambda h: arch(h)["head"][1].update({"in": 5}), "head layer 1 in is 5"),
    (lambda h: arch(h).update(n_outputs=4), "n_outputs is 4"),
    (lambda h: arch(h).update(n_outputs=3.0), "n_outputs is 3.0"),
    (lambda h: h.update(architecture=[1]), "'architecture' must be a JSON object"),
])
def test_header_is_checked(tmp_path, good_file, mutate, problem):
    expect_error(rewrite_header(good_file, tmp_path / "m.npz", mutate), problem)


def test_header_values_from_the_file_are_escaped_in_messages(tmp_path, good_file):
    err = expect_error(rewrite_header(good_file, tmp_path / "m.npz",
                                      lambda h: h.update(format="\x1b]0;pwned\x07")), "format")
    assert "\x1b" not in str(err) and "\x07" not in str(err) and "\\x1b" in str(err)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values(tmp_path, good_file, value):
    members = read_members(good_file)
    b = np.load(pyio.BytesIO(members["rnn.0.0.b_ih.npy"])).copy()
    b[3] = value
    members["rnn.0.0.b_ih.npy"] = npy_bytes(b)
    expect_error(write_zip(tmp_path / "m.npz", list(members.items())),
                 "'rnn.0.0.b_ih' has non-finite values")


def test_in_memory_buffer_is_not_supported_but_path_like_is(good_file):
    textlrp.load_model(str(good_file))
    with pytest.raises(TypeError):
        textlrp.load_model(pyio.BytesIO(good_file.read_bytes()))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- corruption suite


def header_mutations(header, rng, n):
    """``n`` JSON texts, each the header with one change that no valid file has."""
    def paths(value, prefix=()):
        if isinstance(value, dict):
            for k, v in value.items():
                if prefix + (k,) not in special:  # those get their own values
                    yield prefix + (k,)
                    yield from paths(v, prefix + (k,))
        elif isinstance(value, list) and prefix[-1] not in ("vocab", "class_names"):
            for i, v in enumerate(value):
                yield prefix + (i,)
                yield from paths(v, prefix + (i,))

    # keys where other valid values exist get only values that are never valid there
    special = {("vocab",): [["a"], 5, [1] * 7, {}], ("unk_token",): ["zzz", 5, ["<unk>"]],
               ("class_names",): [[7], 7, ["a", "a"], {}], ("card",): [5, ["x"], {}],
               ("tokenizer", "lowercase"): [None, 1, "yes"], ("provenance",): [[], "x", 5, None]}
    bad_values = [None, True, False, 0, -1, 1.5, 10**30, "x", "", [], {}, [None], {"x": 1}]
    everything = list(paths(header)) + list(special)
    texts = []
    while len(texts) < n:
        path = everything[int(rng.integers(len(everything)))]
        h = copy.deepcopy(header)
        parent = h
        for step in path[:-1]:
            parent = parent[step]
        op = int(rng.integers(4))
        if path in special:
            choices = special[path]
            parent[path[-1]] = choices[int(rng.integers(len(choices)))]
        elif op == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == 1 and isinstance(parent, dict):
            parent[path[-1] + "_"] = parent.pop(path[-1])
        else:
            old = parent[path[-1]]
            value = bad_values[int(rng.integers(len(bad_values)))]
            if value == old and type(value) is type(old):
                continue
            if isinstance(old, int) and not isinstance(old, bool) and op == 2:
                value = old + int(rng.choice([-1, 1, 1000]))  # a plausible wrong size
            parent[path[-1]] = value
        texts.append(("header " + "/".join(map(str, path)), json.dumps(h, ensure_ascii=False)))
    text = json.dumps(header)
    texts += [("header Infinity", text.replace('"input_size": 4', '"input_size": Infinity')),
              ("header truncated", json.dumps(header)[:-5]),
              ("header deep", json.dumps(header)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}")]
    return texts


def corrupted_variants(path, seed):
    """(description, bytes, must_refuse) for a few hundred corruptions of the file at ``path``."""
    rng = np.random.default_rng(seed)
    data = path.read_bytes()
    members = read_members(path)
    names = list(members)
    out = []
    for i in range(160):  # byte flips anywhere: zip headers, npy headers, compressed data
        b = bytearray(data)
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 9))):
            b[pos] ^= int(rng.integers(1, 256))
        out.append((f"flip {i}", bytes(b), False))
    for cut in rng.integers(0, len(data), size=50):
        out.append((f"truncate {cut}", data[:cut], True))
    for i in range(20):
        at = int(rng.integers(len(data)))
        if i % 2:
            out.append((f"insert at {at}", data[:at] + rng.bytes(int(rng.integers(1, 64)))
                        + data[at:], False))
        else:
            out.append((f"delete at {at}", data[:at] + data[at + int(rng.integers(1, 64)):], False))
    for _ in range(20):  # lying central directory fields
        b = bytearray(data)
        entry = central_entry(b, names[int(rng.integers(len(names)))])
        field = int(rng.choice([8, 10, 16, 20, 24, 28, 42]))
        size = 2 if field in (8, 10, 28) else 4
        value = int(rng.integers(0, 2 ** (8 * size)))
        b[entry + field: entry + field + size] = value.to_bytes(size, "little")
        out.append((f"directory field {field} = {value}", bytes(b), False))

    def zipped(items):
        buf = pyio.BytesIO()
        write_zip(buf, items)
        return buf.getvalue()

    shapes = {n: np.load(pyio.BytesIO(d)).shape for n, d in members.items()}
    for _ in range(15):  # swap the data of two members of different shapes
        a, b = rng.choice(names, size=2, replace=False)
        if shapes[a] == shapes[b]:
            continue
        swapped = dict(members)
        swapped[a], swapped[b] = members[b], members[a]
        out.append((f"swap {a} {b}", zipped(swapped.items()), True))
    for i in range(10):
        name = names[int(rng.integers(len(names)))]
        kind = i % 5
        items = list(members.items())
        if kind == 0:
            items = [(n, d) for n, d in items if n != name]
        elif kind == 1:
            items = [(n.replace(".npy", ".x.npy") if n == name else n, d) for n, d in items]
        elif kind == 2:
            items.append((name, members[names[int(rng.integers(len(names)))]]))
        elif kind == 3:
            items.append(("extra.npy", members[name]))
        else:
            items = [(n, d[: len(d) // 2] if n == name else d) for n, d in items]
        out.append((f"member op {kind} on {name}", zipped(items), True))
    header = json.loads(npy_payload(members["metadata.npy"]))
    for what, text in header_mutations(header, rng, 60):
        items = dict(members)
        items["metadata.npy"] = npy_bytes(np.frombuffer(text.encode(), np.uint8))
        out.append((what, zipped(items.items()), True))
    return out


@pytest.mark.parametrize("kind", ["lstm", "gru-attention-regression"])
def test_corruption_suite(tmp_path, kind):
    """Each corrupted variant loads the identical model or raises ModelFileError, in < 1 s and
    < 8 MB of traced memory; variants that change what the file says must be refused."""
    rng = np.random.default_rng(99)
    path = tmp_path / "good.npz"
    if kind == "lstm":
        spec, extras = make_spec(rng), EXTRAS
    else:
        spec = make_spec(rng, cell="gru", pooling="attention", embedding=False, C=1)
        extras = {**EXTRAS, "vocab": None, "unk_token": None, "class_names": None}
    write_model_file(path, spec, **extras)
    spec, extras = read_model_file(path)
    variants = corrupted_variants(path, seed=7 if kind == "lstm" else 8)
    assert len(variants) >= 300
    counts = {"loaded": 0, "refused": 0}
    worst_time = worst_peak = 0.0
    bad = tmp_path / "bad.npz"
    tracemalloc.start()
    try:
        for what, data, must_refuse in variants:
            bad.write_bytes(data)
            tracemalloc.reset_peak()
            start = time.perf_counter()
            try:
                got, got_extras = read_model_file(bad)
            except ModelFileError as exc:
                counts["refused"] += 1
                assert "\x1b" not in str(exc), what
            else:
                counts["loaded"] += 1
                assert not must_refuse, f"{what}: loaded"
                assert_same_spec(got, spec)
                assert got_extras == extras, what
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            assert elapsed < 1.0, f"{what}: {elapsed:.2f} s"
            assert peak < 8 * MB, f"{what}: peak {peak / MB:.1f} MB"
            worst_time, worst_peak = max(worst_time, elapsed), max(worst_peak, peak)
    finally:
        tracemalloc.stop()
    print(f"\n{kind}: {len(variants)} variants, {counts}; slowest {worst_time * 1e3:.1f} ms, "
          f"largest traced peak {worst_peak / MB:.2f} MB")
    assert counts["refused"] > len(variants) // 2


# --------------------------------------------------------------------------- textlrp info


def textlrp_command():
    script = Path(sys.executable).parent / "textlrp"  # the real console script when installed
    return [str(script)] if script.is_file() else [sys.executable, "-m", "textlrp"]


def run_cli(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTLRP_")}
    return subprocess.run([*textlrp_command(), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, bomb_source, bomb_file):
    d = tmp_path_factory.mktemp("bad")
    good = bomb_source
    text = json.dumps(header_of(good))
    members = read_members(good)
    files = {
        "not a zip": d / "a.npz",
        "deep JSON": rewrite_header(good, d / "b.npz", text=text[:-1] + ', "x": ' + "[" * 100_000
                                    + "]" * 100_000 + "}"),
        "Infinity": rewrite_header(good, d / "c.npz",
                                   text=text.replace('"vocab_size": 7', '"vocab_size": Infinity')),
        "non-integer size": rewrite_header(good, d / "d.npz", text=text.replace(
            '"vocab_size": 7', '"vocab_size": 16582.5')),
        "missing provenance": rewrite_header(good, d / "e.npz", lambda h: h.pop("provenance")),
        "missing unk_token": rewrite_header(good, d / "f.npz", lambda h: h.pop("unk_token")),
        "member not npy": write_zip(d / "g.npz", [*((n, m) for n, m in members.items()
                                                    if n != "head.0.W.npy"),
                                                  ("head.0.W.npy", b"garbage")]),
        "duplicate member": write_zip(d / "h.npz", [*members.items(),
                                                    ("head.0.W.npy", members["head.0.W.npy"])]),
        "/dev/zero": Path("/dev/zero"),
        "3 GiB bomb": bomb_file,
    }
    files["not a zip"].write_bytes(b"PK\x03\x04 nothing else")
    os.mkfifo(d / "fifo.npz")
    files["FIFO"] = d / "fifo.npz"
    return files


def test_cli_prints_one_line_for_every_bad_file(bad_files):
    for what, path in bad_files.items():
        proc = run_cli("info", "-m", path)
        assert proc.returncode == 2, (what, proc.stderr)
        assert proc.stdout == "", what
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("textlrp: error: "), (what, proc.stderr)
        assert "not a valid textlrp model file" in lines[0], (what, lines)


def test_info_shows_the_bundled_card():
    proc = run_cli("info")
    assert proc.returncode == 0, proc.stderr
    card = (default_model_path().parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "\nmodel card\n\n# Model card: sst5-bilstm.npz" in proc.stdout
    assert card.strip() in proc.stdout  # training, sweep and limitations, as written
    for section in ("## Training", "## Accuracy", "## Limitations", "| dev | 1101 |"):
        assert section in proc.stdout
    info = json.loads(run_cli("info", "-f", "json").stdout)
    assert info["card"] == card


def test_info_says_when_a_file_has_no_card(tmp_path, rng):
    write_model_file(tmp_path / "m.npz", make_spec(rng), **{**EXTRAS, "card": None})
    proc = run_cli("info", "-m", tmp_path / "m.npz")
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("model card: none (this "
                                                                  "model file carries no card)")
    out = run_cli("info", "-m", tmp_path / "m.npz", "-f", "json").stdout
    assert json.loads(out)["card"] is None


HOSTILE = ["\x1b]0;pwned title\x07neg", "\x1b[2J\x1b[Hneu", "pos\x9b31m\u202eevil"]


def test_info_never_prints_control_characters_from_the_file(tmp_path, rng):
    provenance = {"\x1b[31mkey": "val\x07\x1b]2;title\x1b\\", "rtl": "\u202eabc\u2066",
                  "nested": {"x": ["\x1b[5mblink", "\x9d0;t\x9c"]}, "bell": "\x07" * 3}
    card = "# Card\x1b[2J\n\x07line\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n\ttabbed \u202e\n"
    extras = {**EXTRAS, "vocab": ["\x1b[1m", *VOCAB[1:]], "unk_token": "\x1b[1m",
              "class_names": HOSTILE, "metadata": provenance, "card": card}
    write_model_file(tmp_path / "m.npz", make_spec(rng), **extras)
    proc = run_cli("info", "-m", tmp_path / "m.npz")
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        assert line.isprintable(), repr(line)
    assert "pwned title" not in proc.stdout  # a title-setting sequence is removed whole
    assert "neg" in proc.stdout and "line" in proc.stdout and "link" in proc.stdout
    out = run_cli("info", "-m", tmp_path / "m.npz", "-f", "json").stdout
    assert all(line.isprintable() for line in out.splitlines()), out
    info = json.loads(out)  # escaped, not lost
    assert info["class_names"] == HOSTILE and info["metadata"] == provenance
    assert info["card"] == card
