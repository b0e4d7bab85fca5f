"""The command line checks what it can before any work (issue 9), through the real console
script: optional dependencies and every output path (one line, exit 2, nothing computed),
a --column that no row has, method parameters the method does not take, API warnings as one
line; and the structure that keeps the CLI small (one module per command)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_textlrp

import textlrp
from textlrp import cli

REPO = Path(__file__).resolve().parents[1]
WORDS = ["<unk>", "the", "film", "is", "great", "bad", "not", "fun", "boring", ",", "."]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    rng = np.random.default_rng(1)
    d, e = 3, 4

    def direction():
        return {"W_ih": rng.normal(0, 0.6, (4 * d, e)), "W_hh": rng.normal(0, 0.6, (4 * d, d)),
                "b": rng.normal(0, 0.2, 4 * d)}
    path = tmp_path_factory.mktemp("model") / "m.npz"
    textlrp.from_arrays(rng.normal(0, 1, (len(WORDS), e)), [[direction(), direction()]],
                        [{"W": rng.normal(0, 1, (2, 2 * d)), "b": None}], vocab=WORDS,
                        class_names=["neg", "pos"], unk_token="<unk>").save(path)
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A labelled TSV the deletion command reads (label<TAB>text)."""
    path = tmp_path_factory.mktemp("data") / "d.tsv"
    rows = ["pos\tthe film is great fun , not boring .", "neg\tthe film is bad , not fun ."] * 3
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def hide(tmp_path, module):
    """A PYTHONPATH entry whose `module` cannot be imported (hides an installed one)."""
    root = tmp_path / f"hide-{module}"
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    return {"PYTHONPATH": str(root)}


# --------------------------------------------------------------------------- deletion outputs


def test_deletion_plot_without_matplotlib_stops_before_the_experiment(model_path, data, tmp_path):
    out = tmp_path / "r.json"
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "--min-length", "3",
                       "--json", str(out), "--plot", str(tmp_path / "p.png"),
                       env=hide(tmp_path, "matplotlib"))
    assert_one_line_error(proc, "--plot needs matplotlib (not installed)",
                          "pip install 'textlrp[plot]'")
    assert proc.stdout == "" and not out.exists()  # the experiment did not run


@pytest.mark.parametrize("option", ["--json", "--csv", "--plot"])
def test_deletion_output_paths_are_checked_first(model_path, data, tmp_path, option):
    name = "r.png" if option == "--plot" else "r.out"
    missing = tmp_path / "no" / "such" / "dir" / name
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, option, str(missing))
    assert_one_line_error(proc, f"cannot write {option}", "does not exist")
    assert proc.stdout == ""
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, option, str(tmp_path))
    assert_one_line_error(proc, "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, option,
                       str(blocker / name))
    assert_one_line_error(proc, "is not a directory")


def test_deletion_plot_format_is_checked_first(model_path, data, tmp_path):
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "--plot",
                       str(tmp_path / "p.txt"))
    assert_one_line_error(proc, "cannot tell the image format", ".png")
    assert proc.stdout == ""


def test_deletion_writes_everything_when_the_checks_pass(model_path, data, tmp_path):
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "--min-length", "3",
                       "-k", "2", "--methods", "lrp,gi", "--json", str(tmp_path / "r.json"),
                       "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.svg"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["k"] == [0, 1, 2]
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")


def test_deletion_protocol_options_are_validated(model_path, data):
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "--bias-factor", "2")
    assert_one_line_error(proc, "bias factor must be in [0, 1]")
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "--methods", "lime")
    assert_one_line_error(proc, "unknown method 'lime'")
    proc = run_textlrp("deletion", "--data", data, "-m", model_path, "-k", "0")
    assert_one_line_error(proc, "positive integer")


# --------------------------------------------------------------------------- other commands


def test_explain_output_is_checked_before_the_model_loads(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("great fun\n")
    for output, fragment in [(tmp_path / "nodir" / "o.jsonl", "does not exist"),
                             (tmp_path, "is a directory")]:
        # a model path that does not exist: the output error comes first
        proc = run_textlrp("explain", "-m", str(tmp_path / "missing.npz"), "-i", str(corpus),
                           "-o", str(output), "-f", "json")
        assert_one_line_error(proc, "cannot write --output", fragment)
        proc = run_textlrp("predict", "-m", str(tmp_path / "missing.npz"), "great",
                           "-o", str(output), "-f", "json")
        assert_one_line_error(proc, "cannot write --output", fragment)


def test_train_checks_out_and_torch_before_training(tmp_path):
    proc = run_textlrp("train", "--data", str(tmp_path), "--out",
                       str(tmp_path / "missing" / "m.npz"), env=hide(tmp_path, "torch"))
    assert_one_line_error(proc, "cannot write --out", "does not exist")
    proc = run_textlrp("train", "--data", str(tmp_path / "nothing"), "--out",
                       str(tmp_path / "m.npz"))
    assert_one_line_error(proc, "--data", "not a directory")
    proc = run_textlrp("train", "--data", str(tmp_path), "--out", str(tmp_path / "m.npz"),
                       "--dropout", "1.5")
    assert_one_line_error(proc, "dropout must be in [0, 1)")


def test_data_dest_is_checked_before_downloading(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_textlrp("data", "sst", "--dest", str(blocker), "--url", "http://127.0.0.1:9/x")
    assert_one_line_error(proc, "--dest", "not a directory")
    proc = run_textlrp("data", "sst", "--dest", str(blocker / "sub"), "--url",
                       "http://127.0.0.1:9/x")
    assert_one_line_error(proc, "--dest", "not a directory")


# --------------------------------------------------------------------------- --column


def test_a_column_no_row_has_is_one_error(model_path, tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("great fun\nbad film\n\nnot boring\n", encoding="utf-8")
    for command in ("explain", "predict"):
        proc = run_textlrp(command, "-m", model_path, "-i", str(path), "--column", "3")
        line = assert_one_line_error(proc, "--column 3: all 3 rows of", "lack that column",
                                     "check --column and --delimiter (now tab)")
        assert "line 1: the row has 1 column, column 3 is needed" in line
        assert proc.stdout == ""
    out = tmp_path / "o.html"
    proc = run_textlrp("explain", "-m", model_path, "-i", str(path), "--column", "2",
                       "-o", str(out))
    assert_one_line_error(proc, "--column 2")
    assert not out.exists()  # checked before the output is opened


def test_the_first_hundred_rows_decide(model_path, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("great fun\n" * 100 + "x,great fun\n", encoding="utf-8")
    proc = run_textlrp("predict", "-m", model_path, "-i", str(path), "--column", "2")
    assert_one_line_error(proc, "--column 2: the first 100 rows of", "(now comma)")
    # one good row among the first hundred: the data, not the options, is at fault
    path.write_text("great fun\n" * 99 + "x,great fun\n" + "bad\n" * 5, encoding="utf-8")
    proc = run_textlrp("predict", "-m", model_path, "-i", str(path), "--column", "2")
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(recs) == 105 and [r["line"] for r in recs] == list(range(1, 106))
    assert recs[99]["text"] == "great fun" and "error" in recs[0] and "error" in recs[100]


def test_a_label_column_without_classes_is_one_error(model_path, tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("great fun\tgood\nbad film\tawful\n", encoding="utf-8")
    proc = run_textlrp("explain", "-m", model_path, "-i", str(path), "--column", "1",
                       "--label-column", "2")
    assert_one_line_error(proc, "--label-column 2: all 2 rows of", "hold no class of the model")
    proc = run_textlrp("explain", "-m", model_path, "-i", str(path), "--column", "1",
                       "--label-column", "3")
    assert_one_line_error(proc, "--label-column 3", "lack that column")
    # some rows with a class: records, exit 0
    path.write_text("great fun\tpos\nbad film\tawful\n", encoding="utf-8")
    proc = run_textlrp("explain", "-m", model_path, "-i", str(path), "--column", "1",
                       "--label-column", "2")
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert recs[0]["label_name"] == "pos" and "not a class" in recs[1]["error"]


# --------------------------------------------------------------------------- method options


@pytest.mark.parametrize("argv, fragment", [
    (["--method", "sa", "--eps", "0.1"], "eps applies to method 'lrp' only"),
    (["--method", "gi", "--rule", "prop"], "rule applies to method 'lrp' only"),
    (["--method", "occlusion", "--bias-factor", "1"], "bias_factor applies to method 'lrp'"),
    (["--method", "lrp", "--seed", "3"], "seed applies to method 'random' only"),
    (["--bias-factor", "2"], "bias factor must be in [0, 1]"),
    (["--bias-factor", "-0.5"], "bias factor must be in [0, 1]"),
])
def test_method_parameters_are_refused_not_ignored(model_path, tmp_path, argv, fragment):
    proc = run_textlrp("explain", "-m", model_path, "great fun", *argv)
    assert_one_line_error(proc, fragment)
    corpus = tmp_path / "c.txt"
    corpus.write_text("great fun\n")
    proc = run_textlrp("explain", "-m", model_path, "-i", str(corpus), *argv)
    assert_one_line_error(proc, fragment)
    assert proc.stdout == ""


def test_all_classes_through_the_console_matches_the_api(model_path, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the film is great\n\nnot fun , boring .\n")
    proc = run_textlrp("explain", "-m", model_path, "-i", str(corpus), "--all-classes",
                       "--method", "gi")
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [(r["line"], r.get("target")) for r in recs] == [(1, 0), (1, 1), (2, None), (3, 0),
                                                            (3, 1)]
    model = textlrp.load_model(model_path)
    for rec in (recs[0], recs[1], recs[3], recs[4]):
        want = model.explain(rec["text"], method="gi", target=rec["target"])
        np.testing.assert_allclose(rec["relevance"], want.relevance, rtol=1e-12)


def test_a_long_occlusion_warns_in_one_line(model_path):
    text = " ".join(["great"] * 1001)
    proc = run_textlrp("explain", "-m", model_path, "-f", "json", "--method", "occlusion", text)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and re.match(r"textlrp: warning: occlusion reruns the model once per "
                                        r"token, O\(T\^2\).*expect about \d+ s", lines[0]), lines
    assert len(json.loads(proc.stdout)["relevance"]) == 1001


# --------------------------------------------------------------------------- structure


def test_one_module_per_command_each_registering_itself():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == [name.replace("_", "-") for name in cli.COMMANDS]
    for name in cli.COMMANDS:
        module = importlib.import_module(f"textlrp.cli.{name}")
        assert callable(module.add_parser), name
        # (data's function sits on its sub-command, data sst; import-keras's in keras_import)
        func = sub.choices[name.replace("_", "-")].get_default("func")
        assert name in ("data", "import_keras") or func.__module__ == module.__name__, name


def test_no_argument_parsing_outside_the_cli_package():
    src = REPO / "python" / "textlrp"
    for name in ("train.py", "experiments.py", "download.py", "model.py", "io.py"):
        text = (src / name).read_text(encoding="utf-8")
        assert "argparse" not in text and "sys.argv" not in text, name


def test_explain_layers_table(tmp_path):
    """--layers: the layer totals of LRP; with --bias-factor 1 the conserved column is the
    score on every row (the API's exp.layers, printed)."""
    import textlrp

    proc = run_textlrp("explain", "--layers", "--bias-factor", "1", "-o", tmp_path / "out.txt",
                       "don't waste your money")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out.txt").read_text()
    assert "don't" not in text or "do" in text  # the explanation itself comes first
    table = text[text.index("layer totals"):].splitlines()
    assert table[1].split() == ["stage", "relevance", "absorbed", "initial", "state", "conserved"]
    exp = textlrp.load_model().explain("don't waste your money", bias_factor=1.0)
    rows = [line for line in table[2:] if not line.startswith("  ")]
    assert len(rows) == len(exp.layers)
    score = f"{exp.scores[exp.target]:+.6f}"
    assert all(line.split()[-1] == score for line in rows), table
    assert sum(line.startswith("  lstm layer 0") for line in table) == 2  # both directions
    bad = run_textlrp("explain", "--layers", "--method", "gi", "x")
    assert_one_line_error(bad, "--layers")
