"""textlrp train: a tiny model on synthetic trees, and the bundled default model vs its model card."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SST_DIR, assert_one_line_error, requires_sst, run_textlrp

import textlrp
from textlrp.io import default_model_path, read_model_file
from textlrp.train import TORCH_HINT

REPO = Path(__file__).resolve().parents[1]
WORDS = {"great": 4, "good": 3, "fine": 2, "bad": 1, "awful": 0}
FILLER = ["the", "film", "is", "a", "plot", "-LRB-", "-RRB-"]


def tree_line(rng: np.random.Generator) -> str:
    """A right-branching tree; its label is the label of its one sentiment word."""
    word = list(WORDS)[int(rng.integers(len(WORDS)))]
    tokens = [str(t) for t in rng.choice(FILLER, size=int(rng.integers(1, 5)))]
    tokens.insert(int(rng.integers(len(tokens) + 1)), word)
    label = WORDS[word]
    node = f"({WORDS.get(tokens[-1], 2)} {tokens[-1]})"
    for tok in reversed(tokens[:-1]):
        node = f"({label if word in tokens else 2} ({WORDS.get(tok, 2)} {tok}) {node})"
    return node if len(tokens) > 1 else f"({label} {tokens[0]})"


@pytest.fixture
def synthetic_sst(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("dev", 60), ("test", 60)):
        (tmp_path / f"{split}.txt").write_text("\n".join(tree_line(rng) for _ in range(n)) + "\n", encoding="utf-8")
    return tmp_path


def test_train_cli_writes_a_model_that_loads_and_predicts(synthetic_sst, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from textlrp.cli import main

    monkeypatch.setattr(sys, "argv", ["textlrp", "not", "these", "words"])  # never read

    out = tmp_path / "tiny.npz"
    argv = ["train", "--data", str(synthetic_sst), "--out", str(out), "--epochs", "6", "--seed", "3",
            "--embedding-dim", "8", "--hidden-size", "6", "--batch-size", "16", "--lr", "0.02",
            "--dropout", "0", "--embedding-dropout", "0", "--ema", "0.9", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    model = textlrp.load_model(out)
    assert model.class_names == ["very negative", "negative", "neutral", "positive", "very positive"]
    assert model.lowercase and model.unk_token == "<unk>" and model.vocab[0] == "<unk>"
    assert model.embedding.shape == (len(model.vocab), 8) and len(model.head) == 1 and model.head[0]["b"] is None
    prov = model.metadata
    assert prov["seed"] == 3 and prov["vocab_size"] == len(model.vocab)
    # The command is rebuilt from the parsed values: --data, --out, then the settings in
    # TrainConfig order (defaults left out, the seed always in).
    assert prov["command"] == shlex.join(
        ["textlrp", "train", "--data", str(synthetic_sst), "--out", str(out), "--epochs", "6",
         "--seed", "3", "--lr", "0.02", "--batch-size", "16", "--embedding-dim", "8",
         "--hidden-size", "6", "--dropout", "0", "--embedding-dropout", "0", "--ema", "0.9",
         "--threads", "1"])
    assert set(prov["data"]) == {"train", "dev", "test"} and len(prov["data"]["dev"]["sha256"]) == 64
    assert 0 < prov["best_epoch"] <= 6
    # the task is learnable: the tiny model separates the sentiment words
    assert prov["accuracy"]["dev"]["fine"] > 0.6
    assert model.predict(["the film is great"]).argmax() == 4
    assert model.predict(["awful plot"]).argmax() == 0
    exp = model.explain("The film is AWFUL", target=0)
    assert exp.tokens == ["the", "film", "is", "awful"] and int(np.argmax(exp.relevance)) == 3

    # same seed, same data -> identical weights
    out2 = tmp_path / "tiny2.npz"
    assert main(argv[:4] + [str(out2)] + argv[5:]) == 0
    again = textlrp.load_model(out2)
    np.testing.assert_array_equal(again.embedding, model.embedding)
    np.testing.assert_array_equal(again.head[0]["W"], model.head[0]["W"])


def test_train_errors_are_clear(tmp_path):
    pytest.importorskip("torch")
    from textlrp.cli import main
    from textlrp.train import DropoutConfig, OptimConfig, TrainConfig

    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.npz")]) == 2
    with pytest.raises(ValueError, match="epochs"):
        OptimConfig(epochs=0)
    with pytest.raises(ValueError, match="dropout"):
        DropoutConfig(dropout=1.0)
    with pytest.raises(ValueError, match="unknown training settings: epoch"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(TypeError, match="OptimConfig"):
        TrainConfig(optim={"epochs": 3})


def test_train_config_is_frozen_grouped_and_round_trips_the_file_record():
    from dataclasses import FrozenInstanceError

    from textlrp.train import NetConfig, OptimConfig, TrainConfig

    cfg = TrainConfig(net=NetConfig(hidden_size=30), optim=OptimConfig(epochs=2, lr=0.01), seed=3)
    with pytest.raises(FrozenInstanceError):
        cfg.seed = 4
    with pytest.raises(FrozenInstanceError):
        cfg.optim.lr = 1.0
    flat = cfg.as_dict()
    # the flat record of model files: every setting but progress, in the recorded order
    assert list(flat) == ["epochs", "seed", "lr", "batch_size", "embedding_dim", "hidden_size",
                          "dropout", "embedding_dropout", "word_dropout", "weight_decay", "clip",
                          "ema", "embedding_scale", "lowercase", "threads", "evals_per_epoch",
                          "head_bias"]
    assert flat["epochs"] == 2.0 and isinstance(flat["epochs"], float) and flat["hidden_size"] == 30
    assert TrainConfig.from_dict(flat) == cfg
    # the bundled model's record reads back into a config that records the same
    from textlrp.io import default_model_path
    try:
        recorded = textlrp.load_model(default_model_path()).metadata["config"]
    except FileNotFoundError:
        pytest.skip("the bundled default model is not installed")
    again = TrainConfig.from_dict(recorded)
    assert again.as_dict() == recorded and again.net == NetConfig() and again.optim == OptimConfig()


def test_train_without_torch_gives_the_readme_install_command(tmp_path):
    # A `torch` package that cannot be imported hides any installed torch from the child.
    hidden = tmp_path / "hide" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    proc = run_textlrp("train", "--data", str(tmp_path), "--out", str(tmp_path / "m.npz"),
                       env={"PYTHONPATH": str(tmp_path / "hide")})
    assert_one_line_error(proc, "needs PyTorch", TORCH_HINT)
    assert TORCH_HINT == "pip install torch==2.13.0"
    assert TORCH_HINT in (REPO / "README.md").read_text(encoding="utf-8")


def test_train_console_script_summary_is_key_value_text(synthetic_sst, tmp_path):
    pytest.importorskip("torch")
    from textlrp.cli import main

    out = tmp_path / "tiny model.npz"  # a space: the recorded command must quote it
    proc = run_textlrp("train", "--data", str(synthetic_sst), "--out", str(out), "--epochs", "1",
                       "--embedding-dim", "8", "--hidden-size", "6", "--batch-size", "32",
                       "--lr=0.02", "--no-lowercase", "--threads", "1", "--no-progress",
                       timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and lines[0] == f"model: {out}", lines
    assert re.fullmatch(r"best epoch: [\d.]+", lines[1])
    for split, line in zip(("dev", "test"), lines[2:]):
        assert re.fullmatch(rf"{split} accuracy: \d+\.\d% 5-class, \d+\.\d% binary "
                            r"\(60 sentences\)", line), line
    assert "{" not in proc.stdout + proc.stderr  # no dict reprs, on either stream
    assert re.search(r"^best epoch [\d.]+: dev \d+\.\d% 5-class, \d+\.\d% binary; test ",
                     proc.stderr, re.MULTILINE), proc.stderr
    # The recorded command, run again, trains the same model.
    prov = textlrp.load_model(out).metadata
    argv = shlex.split(prov["command"])
    assert argv[:2] == ["textlrp", "train"] and "--no-lowercase" in argv and "--seed" in argv
    out2 = tmp_path / "again.npz"
    argv[argv.index("--out") + 1] = str(out2)
    assert main([*argv[1:], "--no-progress"]) == 0
    np.testing.assert_array_equal(textlrp.load_model(out2).embedding,
                                  textlrp.load_model(out).embedding)


# --------------------------------------------------------------------------- the bundled model

def card_numbers() -> dict[str, float]:
    """Accuracies (percent) as written in data/MODEL_CARD.md's table."""
    text = (REPO / "data" / "MODEL_CARD.md").read_text(encoding="utf-8")
    numbers = {}
    for split in ("dev", "test"):
        m = re.search(rf"^\| {split} \| (\d+) \| ([\d.]+) % \| ([\d.]+) % \|", text, re.MULTILINE)
        assert m, f"no {split} row in the model card table"
        numbers[f"{split}_fine"] = float(m.group(2))
        numbers[f"{split}_binary"] = float(m.group(3))
    return numbers


def test_default_model_matches_model_card():
    path = default_model_path()
    assert path.stat().st_size < 10 * 2**20
    spec, extras = read_model_file(path)
    acc = extras["metadata"]["accuracy"]
    card = card_numbers()
    for split in ("dev", "test"):
        assert round(100 * acc[split]["fine"], 1) == card[f"{split}_fine"]
        assert round(100 * acc[split]["binary"], 1) == card[f"{split}_binary"]
    assert acc["test"]["fine"] >= 0.47
    arch = spec.describe()
    assert arch["layers"] == [{"cell": "lstm", "directions": 2, "hidden": 60}]
    assert arch["head"] == [{"in": 120, "out": 5, "bias": False}] and arch["pooling"] == "last"


def test_default_model_negative_example():
    model = textlrp.load_model()
    exp = model.explain("don't waste your money")
    assert exp.prediction_name in ("very negative", "negative")
    assert json.dumps(model.metadata)  # provenance is plain JSON


@requires_sst("dev.txt")
def test_default_model_dev_accuracy_reproduced_by_the_engine():
    from textlrp.sst import load_sentences
    from textlrp.train import accuracies

    model = textlrp.load_model()
    dev = load_sentences(SST_DIR / "dev.txt")
    scores = model.predict([toks for toks, _ in dev])
    acc = accuracies(scores, np.array([y for _, y in dev]))
    stored = model.metadata["accuracy"]["dev"]
    # the engine (float64) and torch (float32) agree on all but maybe a near-tie or two
    assert abs(acc["fine"] - stored["fine"]) <= 2 / len(dev)
    assert abs(acc["binary"] - stored["binary"]) <= 2 / len(dev)


def test_accuracies_fine_and_binary_on_non_neutral():
    from textlrp.train import accuracies

    scores = np.log(np.array([
        [0.5, 0.2, 0.1, 0.1, 0.1],   # label 0: fine right, binary right
        [0.1, 0.1, 0.4, 0.3, 0.1],   # label 3: fine wrong (2), binary right (0.4 > 0.2)
        [0.05, 0.3, 0.35, 0.2, 0.1],  # label 1: fine wrong, binary right (0.35 > 0.3)
        [0.1, 0.1, 0.6, 0.1, 0.1],   # label 2: fine right, left out of binary
        [0.3, 0.3, 0.1, 0.2, 0.1],   # label 4: fine wrong, binary wrong
    ]))
    acc = accuracies(scores, np.array([0, 3, 1, 2, 4]))
    assert acc == {"fine": 2 / 5, "binary": 3 / 4}


def test_train_restores_torch_global_settings(synthetic_sst, tmp_path):
    torch = pytest.importorskip("torch")
    from textlrp.train import NetConfig, OptimConfig, TrainConfig, train

    threads = torch.get_num_threads()
    before = torch.are_deterministic_algorithms_enabled()
    cfg = TrainConfig(net=NetConfig(embedding_dim=4, hidden_size=3), optim=OptimConfig(epochs=0.5),
                      threads=1, progress=False)
    train(synthetic_sst, tmp_path / "m.npz", cfg, log=lambda msg: None)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == before
