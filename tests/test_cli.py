"""The textlrp command line, driven through cli.main([...]) on a small random model."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_textlrp

import textlrp
from textlrp import cli
from textlrp.cli import inputs, outputs
from textlrp.methods import RULES

WORDS = ["the", "a", "movie", "film", "is", "was", "great", "good", "bad", "terrible", "boring",
         "fun", "not", "very", "and", "but", "of", "plot", "acting", "story", ",", ".", "!", "it",
         "this", "i", "loved", "hated"]
CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]
ESC = "\x1b"


def _random_model(seed=0):
    rng = np.random.default_rng(seed)
    vocab = ["<unk>"] + WORDS
    e, d, C = 6, 5, len(CLASSES)

    def direction():
        return {"W_ih": rng.normal(0, 0.6, (4 * d, e)), "W_hh": rng.normal(0, 0.6, (4 * d, d)),
                "b": rng.normal(0, 0.2, 4 * d)}
    return textlrp.from_arrays(
        rng.normal(0, 1, (len(vocab), e)), [[direction(), direction()]],
        [{"W": rng.normal(0, 1, (C, 2 * d)), "b": rng.normal(0, 0.2, C)}],
        vocab=vocab, class_names=CLASSES, unk_token="<unk>", lowercase=True,
        metadata={"name": "random test model", "accuracy": {"dev": {"fine": 0.21, "n": 1101}},
                  "history": [{"epoch": k, "dev": 0.2} for k in range(3)], "tags": ["a", "b"],
                  "config": {"optim": {"lr": 0.002}}})


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "random.npz"
    _random_model().save(path)
    return str(path)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("NO_COLOR", "COLORTERM", "COLORFGBG", "TEXTLRP_MODEL", "TEXTLRP_DEBUG", "TERM"):
        monkeypatch.delenv(var, raising=False)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def assert_user_error(capsys, *argv, match=""):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("textlrp: error: "), err
    assert "Traceback" not in err
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def softmax(s):
    e = np.exp(np.asarray(s) - np.max(s))
    return e / e.sum()


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


SENTENCE = "This movie was great , not boring !"


# --------------------------------------------------------------------------- explain TEXT


def test_explain_text_plain_when_not_a_terminal(capsys, model_path):
    out = ok(capsys, "explain", "-m", model_path, SENTENCE)
    assert ESC not in out
    lines = out.splitlines()
    assert lines[0].startswith("this(") and "great(" in lines[0]
    assert "predicted " in lines[1] and "explained " in lines[1] and "lrp (signal-take-all, eps 0.001, bias_factor 0)" in lines[1]


def test_explain_words_need_no_quotes(capsys, model_path):
    assert ok(capsys, "explain", "-m", model_path, *SENTENCE.split()) == \
        ok(capsys, "explain", "-m", model_path, SENTENCE)


def test_color_always_uses_truecolor_when_colorterm_says_so(capsys, model_path, monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")
    out = ok(capsys, "explain", "-m", model_path, SENTENCE, "--color", "always")
    assert "\x1b[48;2;" in out
    monkeypatch.delenv("COLORTERM")
    out = ok(capsys, "explain", "-m", model_path, SENTENCE, "--color", "always")
    assert "\x1b[48;5;" in out and "\x1b[48;2;" not in out


def test_color_auto_and_no_color(capsys, model_path, monkeypatch):
    class TTY(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setenv("COLORTERM", "24bit")
    monkeypatch.setattr(sys, "stdout", TTY())
    assert cli.main(["explain", "-m", model_path, SENTENCE]) == 0
    assert "\x1b[48;2;" in sys.stdout.getvalue()
    monkeypatch.setattr(sys, "stdout", TTY())
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.main(["explain", "-m", model_path, SENTENCE]) == 0
    assert ESC not in sys.stdout.getvalue() and "great(" in sys.stdout.getvalue()
    monkeypatch.setattr(sys, "stdout", TTY())
    assert cli.main(["explain", "-m", model_path, SENTENCE, "--color", "never"]) == 0
    assert ESC not in sys.stdout.getvalue()


def test_values_and_theme(capsys, model_path):
    light = ok(capsys, "explain", "-m", model_path, SENTENCE, "--color", "always", "--values",
               "--theme", "light")
    dark = ok(capsys, "explain", "-m", model_path, SENTENCE, "--color", "always", "--values",
              "--theme", "dark")
    assert light != dark
    exp = _random_model().explain(SENTENCE)
    words = re.sub(r"\x1b\[[0-9;]*m", "", light.splitlines()[0]).split()
    assert len(words) == len(exp.tokens)
    for word, token, r in zip(words, exp.display, exp.relevance):
        assert word.startswith(token + "(") and word.endswith(")")
        assert float(word[len(token) + 1:-1]) == pytest.approx(r, abs=0.005)  # the number beside it


def test_oov_marked(capsys, model_path):
    out = ok(capsys, "explain", "-m", model_path, "the zorblax movie")
    assert "zorblax[?](" in out and "[?]: not in the vocabulary" in out
    out = ok(capsys, "explain", "-m", model_path, "the zorblax movie", "--color", "always")
    assert "\x1b[4m" in out and "underlined" in out


def test_target_by_name_and_index(capsys, model_path):
    by_name = json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json",
                            "--target", "neutral"))[0]
    by_index = json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json", "-t", "2"))[0]
    assert by_name["target"] == by_index["target"] == 2 and by_name["target_name"] == "neutral"
    assert by_name["relevance"] == by_index["relevance"]
    expected = _random_model().explain(SENTENCE, target=2)
    np.testing.assert_allclose(by_name["relevance"], expected.relevance, rtol=1e-12)


@pytest.mark.parametrize("method", ["lrp", "sa", "gi", "occlusion", "random"])
def test_every_method(capsys, model_path, method):
    rec = json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json",
                        "--method", method))[0]
    assert rec["method"] == method
    expected = _random_model().explain(SENTENCE, method=method)
    np.testing.assert_allclose(rec["relevance"], expected.relevance, rtol=1e-12)
    assert (rec["rest"] is not None) == (method == "lrp")


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_with_eps_and_bias_factor(capsys, model_path, rule):
    rec = json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json", "--rule", rule,
                        "--eps", "0.01", "--bias-factor", "1"))[0]
    assert rec["params"] == {"rule": rule, "eps": 0.01, "bias_factor": 1.0}
    expected = _random_model().explain(SENTENCE, rule=rule, eps=0.01, bias_factor=1.0)
    np.testing.assert_allclose(rec["relevance"], expected.relevance, rtol=1e-12)
    if rule == "signal-take-all":  # conservation survives the trip through JSON
        total = sum(rec["relevance"]) + rec["rest"]
        assert total == pytest.approx(rec["scores"][rec["target"]], abs=1e-9)


def test_seed(capsys, model_path):
    def rel(seed):
        return json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json",
                             "--method", "random", "--seed", seed))[0]["relevance"]
    assert rel(1) == rel(1) != rel(2)


def test_all_classes(capsys, model_path):
    out = ok(capsys, "explain", "-m", model_path, SENTENCE, "--all-classes")
    lines = out.splitlines()
    assert lines[0].startswith("predicted ")
    assert sum(1 for line in lines[1:] if "great(" in line) == len(CLASSES)
    assert sum(1 for line in lines if line.startswith("* ")) == 1
    recs = json_lines(ok(capsys, "explain", "-m", model_path, SENTENCE, "--all-classes", "-f", "json"))
    assert [r["target"] for r in recs] == list(range(len(CLASSES)))


def test_threads_do_not_change_results(capsys, model_path):
    one = ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json", "--threads", "1")
    two = ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", "json", "--threads", "2")
    assert one == two


@pytest.mark.parametrize("fmt", ["ansi", "html", "json", "tsv"])
def test_formats_to_output_file(capsys, model_path, tmp_path, fmt):
    out_file = tmp_path / "out.any"
    assert ok(capsys, "explain", "-m", model_path, SENTENCE, "-f", fmt, "-o", out_file) == ""
    text = out_file.read_text(encoding="utf-8")
    if fmt == "html":
        from test_render import report_data
        assert text.startswith("<!DOCTYPE html>") and len(report_data(text)[1]) == 1
    elif fmt == "json":
        assert len(json_lines(text)) == 1
    elif fmt == "tsv":
        rows = text.splitlines()
        assert rows[0] == "target\tposition\ttoken\tdisplay\trelevance\toov" and len(rows) == 1 + 8
    else:
        assert ESC not in text and "great(" in text  # a file is not a terminal


@pytest.mark.parametrize("suffix, marker", [(".html", "<!DOCTYPE html>"), (".jsonl", '{"text"'),
                                            (".tsv", "target\tposition")])
def test_format_follows_output_suffix(capsys, model_path, tmp_path, suffix, marker):
    out_file = tmp_path / f"out{suffix}"
    ok(capsys, "explain", "-m", model_path, SENTENCE, "-o", out_file)
    assert out_file.read_text(encoding="utf-8").startswith(marker)


def test_html_report_escapes_the_text(capsys, model_path):
    evil = '<script>alert(1)</script> " onmouseover="x'
    out = ok(capsys, "explain", "-m", model_path, evil, "-f", "html", "--title", "<i>t</i>")
    markup = re.sub(r'<script type="application/json".*?</script>', "", out, flags=re.DOTALL)
    assert out.count("<script") == 3 and "onmouseover=" not in markup and "<i>t</i>" not in out
    assert "&lt;i&gt;t&lt;/i&gt;" in out
    from test_render import report_data
    assert report_data(out)[1][0]["s"] == evil  # in the data, as data


def test_model_from_environment(capsys, model_path, monkeypatch):
    monkeypatch.setenv("TEXTLRP_MODEL", model_path)
    assert "great(" in ok(capsys, "explain", SENTENCE)


# --------------------------------------------------------------------------- predict / info


def test_predict_text_formats(capsys, model_path):
    scores = _random_model().predict([SENTENCE])[0]
    out = ok(capsys, "predict", "-m", model_path, SENTENCE)
    assert out.splitlines()[0].startswith(f"predicted {CLASSES[int(np.argmax(scores))]} ")
    assert len(out.splitlines()) == 1 + len(CLASSES)
    rec = json_lines(ok(capsys, "predict", "-m", model_path, SENTENCE, "-f", "json"))[0]
    np.testing.assert_allclose(rec["scores"], scores, rtol=1e-12)
    assert rec["prediction"] == int(np.argmax(scores)) and rec["class_names"] == CLASSES
    tsv = ok(capsys, "predict", "-m", model_path, SENTENCE, "-f", "tsv").splitlines()
    assert tsv[0].split("\t")[:2] == ["text", "prediction"] and len(tsv) == 2
    assert "<!DOCTYPE html>" in ok(capsys, "predict", "-m", model_path, SENTENCE, "-f", "html")


def test_info(capsys, model_path):
    out = ok(capsys, "info", "-m", model_path)
    assert "bidirectional LSTM 5 per direction" in out and "very positive" in out
    assert "random test model" in out and "  accuracy\n    dev: fine 0.21, n 1101" in out
    assert "history: [3 entries]" in out and "tags: a, b" in out and "optim: lr 0.002" in out
    card = json.loads(ok(capsys, "info", "-m", model_path, "-f", "json"))
    assert card["vocab_size"] == len(WORDS) + 1 and card["class_names"] == CLASSES
    assert card["metadata"]["accuracy"] == {"dev": {"fine": 0.21, "n": 1101}}


# --------------------------------------------------------------------------- corpora


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


CORPUS = [b"the movie was great", b"", b"terrible plot , bad acting", b"   ", b"\xff\xfe bad",
          b"fun !", b"<script>alert(1)</script>"]


def test_corpus_json_lines_with_error_records(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"\n".join(CORPUS) + b"\n")
    code, out, err = run(capsys, "explain", "-m", model_path, "--input", path)
    assert code == 0
    recs = json_lines(out)
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 6, 7]
    errors = {r["line"]: r["error"] for r in recs if "error" in r}
    assert set(errors) == {2, 4, 5}
    assert errors[2] == "empty line" and "UTF-8" in errors[5]
    assert set(recs[1]) == {"line", "text", "error"}
    from test_render import check_schema
    for r in recs:
        if "error" not in r:
            check_schema(r)
    expected = _random_model().explain("terrible plot , bad acting")
    np.testing.assert_allclose(recs[2]["relevance"], expected.relevance, rtol=1e-12)
    assert "3 of 7 lines" in err


def test_corpus_skip_empty(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"\n".join(CORPUS))
    recs = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "--skip-empty"))
    assert [r["line"] for r in recs] == [1, 3, 5, 6, 7]  # the invalid UTF-8 line still reported


def test_corpus_batch_size_and_threads_do_not_change_output(capsys, model_path, tmp_path):
    lines = [" ".join(np.random.default_rng(k).choice(WORDS, size=1 + k % 9)) for k in range(23)]
    path = write(tmp_path, "c.txt", "\n".join(lines).encode())
    a = ok(capsys, "explain", "-m", model_path, "-i", path, "--batch-size", "1", "--threads", "1")
    b = ok(capsys, "explain", "-m", model_path, "-i", path, "--batch-size", "4", "--threads", "2")
    c = ok(capsys, "explain", "-m", model_path, "-i", path)
    assert a == b == c and len(json_lines(a)) == 23


def test_corpus_batches_of_only_bad_lines(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"\n\n\ngreat\n\xff\n")
    recs = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "--batch-size", "2"))
    assert [(r["line"], "error" in r) for r in recs] == [(1, True), (2, True), (3, True), (4, False),
                                                          (5, True)]


def test_corpus_from_stdin(capsys, model_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"great fun\nbad plot\n")))
    recs = json_lines(ok(capsys, "explain", "-m", model_path, "-i", "-"))
    assert [r["text"] for r in recs] == ["great fun", "bad plot"]


def test_corpus_from_a_plain_text_stdin(capsys, model_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("great fun\n"))
    assert json_lines(ok(capsys, "predict", "-m", model_path, "-i", "-"))[0]["text"] == "great fun"


def test_corpus_all_classes_and_target(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"great fun\n\nbad plot\n")
    recs = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "--all-classes"))
    assert [(r["line"], r.get("target")) for r in recs] == (
        [(1, t) for t in range(5)] + [(2, None)] + [(3, t) for t in range(5)])
    model = _random_model()
    for r in recs[:5]:
        assert r["text"] == "great fun" and r["tokens"] == ["great", "fun"]
        np.testing.assert_allclose(r["relevance"], model.explain("great fun", target=r["target"]).relevance,
                                   rtol=1e-12)
    recs = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "-t", "positive"))
    assert [r.get("target_name") for r in recs] == ["positive", None, "positive"]


def test_corpus_html_report_is_one_escaped_page(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"\n".join(CORPUS))
    out_file = tmp_path / "report.html"
    ok(capsys, "explain", "-m", model_path, "-i", path, "-o", out_file, "--title", "SST <dev>")
    page = out_file.read_text(encoding="utf-8")
    assert page.count("<!DOCTYPE html>") == 1 and page.rstrip().endswith("</html>")
    from test_render import report_data
    meta, records = report_data(page)
    assert [r["n"] for r in records] == list(range(1, len(CORPUS) + 1))
    assert sum("e" in r for r in records) == 3 and records[1]["e"] == "empty line"
    assert records[6]["s"] == "<script>alert(1)</script>" and page.count("<script") == 3
    assert "SST &lt;dev&gt;" in page and meta["classes"] == CLASSES


def test_corpus_tsv_and_ansi(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"great fun\n\nbad plot\n")
    code, out, err = run(capsys, "explain", "-m", model_path, "-i", path, "-f", "tsv")
    rows = out.splitlines()
    assert code == 0 and rows[0] == "line\ttarget\tposition\ttoken\tdisplay\trelevance\toov"
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "1", "3", "3"]
    assert "line 2: empty line" in err
    out = ok(capsys, "explain", "-m", model_path, "-i", path, "-f", "ansi")
    assert "#1 great(" in out and "#2 error: empty line" in out and ESC not in out


def test_csv_column_by_name_and_number(capsys, model_path, tmp_path):
    data = b'id,text,label\n1,"great fun, really",3\n2,,1\n3\n4,"bad ""plot""",0\n'
    path = write(tmp_path, "c.csv", data)
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "text"))
    assert [r["line"] for r in recs] == [2, 3, 4, 5]
    assert recs[0]["text"] == "great fun, really" and recs[3]["text"] == 'bad "plot"'
    assert recs[1]["error"] == "empty text" and "column 2 is needed" in recs[2]["error"]
    by_number = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "2",
                              "--header"))
    assert by_number == recs
    explained = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "--column", "text"))
    assert explained[0]["tokens"][:3] == ["great", "fun", ","]


def test_csv_bad_utf8_and_unparsable_rows_are_records(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.csv", b'id,text\n1,great\n2,b\xffad\n3,"fun"\n')
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "text"))
    assert [r["line"] for r in recs] == [2, 3, 4]
    assert recs[1]["error"] == "not valid UTF-8" and recs[2]["text"] == "fun"
    import csv
    path = write(tmp_path, "d.csv", b"id,text\n1,great\n2," + b"x" * 50 + b"\n3,fun\n")
    old = csv.field_size_limit(20)
    try:
        recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "text"))
    finally:
        csv.field_size_limit(old)
    assert [r["line"] for r in recs] == [2, 3, 4]
    assert "cannot parse the row" in recs[1]["error"] and recs[2]["text"] == "fun"


def test_tsv_column_with_delimiter_keeps_quotes(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b'3\t"great" fun\n0\tbad plot\n')
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "2",
                         "--delimiter", "tab"))
    assert [r["text"] for r in recs] == ['"great" fun', "bad plot"]
    path = write(tmp_path, "c2.txt", b"3;great fun\n")
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--column", "2",
                         "--delimiter", ";"))
    assert recs[0]["text"] == "great fun"


def test_header_without_column_skips_the_first_line(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"sentence\ngreat fun\n")
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path, "--header"))
    assert [(r["line"], r["text"]) for r in recs] == [(2, "great fun")]


def test_utf8_bom_and_crlf(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"\xef\xbb\xbfgreat fun\r\nbad\r\n")
    recs = json_lines(ok(capsys, "predict", "-m", model_path, "-i", path))
    assert [r["text"] for r in recs] == ["great fun", "bad"]


@pytest.mark.parametrize("fmt", ["json", "tsv", "html", "ansi"])
def test_predict_corpus_formats(capsys, model_path, tmp_path, fmt):
    path = write(tmp_path, "c.txt", b"great fun\n\nbad plot\n")
    code, out, _ = run(capsys, "predict", "-m", model_path, "-i", path, "-f", fmt)
    assert code == 0
    expected = _random_model().predict(["great fun", "bad plot"])
    if fmt == "json":
        recs = json_lines(out)
        assert recs[1] == {"line": 2, "text": "", "error": "empty line"}
        np.testing.assert_allclose([recs[0]["scores"], recs[2]["scores"]], expected, rtol=1e-12)
    elif fmt == "tsv":
        rows = out.splitlines()
        assert rows[0].startswith("line\ttext\tprediction\tp_very negative") and len(rows) == 3
    elif fmt == "html":
        from test_render import report_data
        meta, records = report_data(out)
        assert meta["kind"] == "predict" and len(records) == 3 and "r" not in records[0]
        np.testing.assert_allclose(records[2]["q"], softmax(expected[1]), atol=6e-4)
    else:
        assert out.splitlines()[0].startswith("#1 predicted ") and "#2 error: empty line" in out


def test_corpus_is_streamed(capsys, model_path, monkeypatch):
    """Records are written before the input ends: an input that breaks after 10 lines
    still leaves the records of the batches finished by then (batches of 2; the engine
    may be one batch behind the reader)."""
    class Breaking:
        def __init__(self):
            self.buffer = self

        def __iter__(self):
            for k in range(10):
                yield b"great fun %d\n" % k
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", Breaking())
    code, out, err = run(capsys, "explain", "-m", model_path, "-i", "-", "--batch-size", "2")
    assert code == 130 and "interrupted" in err
    lines = [r["line"] for r in json_lines(out)]
    assert len(lines) >= 6 and lines == list(range(1, len(lines) + 1))


def test_progress_and_summary_on_a_terminal(capsys, model_path, tmp_path, monkeypatch):
    class TTY(io.StringIO):
        def isatty(self):
            return True
    path = write(tmp_path, "c.txt", b"great fun\nbad plot\n\n")
    err = TTY()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["explain", "-m", model_path, "-i", path, "-o", str(tmp_path / "o.jsonl")]) == 0
    text = err.getvalue()
    assert "explaining" in text  # the bar
    assert "explained 3 lines in" in text and "o.jsonl" in text and "1 of 3 lines" in text
    err = TTY()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["explain", "-m", model_path, "-i", path, "-o", str(tmp_path / "o.jsonl"), "-q"]) == 0
    assert err.getvalue() == ""


def test_non_ascii_text_survives(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", "café naïve 😀 film\n".encode())
    rec = json_lines(ok(capsys, "explain", "-m", model_path, "-i", path, "-o", "-"))[0]
    assert rec["text"] == "café naïve 😀 film" and rec["oov"][:2] == [True, True]


# --------------------------------------------------------------------------- user mistakes


@pytest.mark.parametrize("argv, match", [
    (["explain", "-m", "/nonexistent/model.npz", "hi"], "model file not found"),
    (["explain", "hi", "--target", "happy"], "unknown class"),
    (["explain", "hi", "--target", "7"], "out of range"),
    (["explain"], "give a TEXT"),
    (["predict"], "textlrp predict --help"),
    (["explain", "   "], "empty"),
    (["explain", "hi", "--eps", "-1"], "eps must be > 0"),
    (["explain", "hi", "--eps", "0"], "eps must be > 0"),
    (["explain", "hi", "--eps", "nan"], "finite"),
    (["explain", "hi", "--bias-factor", "x"], "number"),
    (["explain", "hi", "--threads", "0"], "positive integer"),
    (["explain", "hi", "--batch-size", "-3"], "positive integer"),
    (["explain", "hi", "--seed", "1.5"], "integer"),
    (["explain", "hi", "--method", "magic"], "invalid choice"),
    (["explain", "hi", "--rule", "z"], "invalid choice"),
    (["explain", "hi", "--format", "pdf"], "invalid choice"),
    (["explain", "hi", "--output", "report.pdf"], "cannot tell the output format"),
    (["explain", "hi", "--output", "report"], "give --format"),
    (["explain", "hi", "--scale", "0"], "positive"),
    (["explain", "hi", "--scale", "paragraph"], "sentence"),
    (["explain", "hi", "--scale", "report", "-f", "tsv"], "the tsv format has none"),
    (["predict", "--input", "-", "--label-column", "1"], "--label-column needs --column"),
    (["explain", "hi", "--color", "pink"], "invalid choice"),
    (["explain", "hi", "--no-such-option"], "unrecognized"),
    (["explain", "hi", "--all-classes", "--target", "0"], "--all-classes"),
    (["explain", "hi", "--column", "2"], "need --input"),
    (["explain", "hi", "--input", "x.txt"], "not both"),
    (["explain", "--input", "/nonexistent/in.txt"], "no such file"),
    (["explain", "--input", "/"], "directory"),
    (["predict", "--input", "-", "--delimiter", "tab"], "--delimiter needs --column"),
    (["predict", "--input", "-", "--column", "0"], "counts from 1"),
    (["predict", "--input", "-", "--column", "1", "--delimiter", "ab"], "one character"),
    (["explain", "hi", "-o", "/nonexistent/dir/out.html"], "cannot write"),
    ([], "choose a command"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_give_one_line_and_status_2(capsys, model_path, monkeypatch, argv, match):
    monkeypatch.setenv("TEXTLRP_MODEL", model_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert_user_error(capsys, *argv, match=match)


def test_unknown_column_name(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.csv", b"id,text\n1,great\n")
    line = assert_user_error(capsys, "predict", "-m", model_path, "-i", path, "--column", "sentence")
    assert "'id', 'text'" in line


def test_model_without_vocabulary(capsys, tmp_path):
    m = _random_model()
    path = tmp_path / "ids.npz"
    textlrp.from_arrays(m.embedding, m.lstm_layers, m.head).save(path)
    assert_user_error(capsys, "explain", "-m", path, "great", match="no vocabulary")
    assert_user_error(capsys, "predict", "-m", path, "-i", "-", match="no vocabulary")
    assert "ids only" in ok(capsys, "info", "-m", path)


def test_corrupt_model_file(capsys, tmp_path):
    path = write(tmp_path, "bad.npz", b"this is not a zip archive")
    assert_user_error(capsys, "info", "-m", path)


def test_output_must_not_overwrite_input(capsys, model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"great\n")
    assert_user_error(capsys, "explain", "-m", model_path, "-i", path, "-o", path, match="overwrite")
    assert Path(path).read_bytes() == b"great\n"


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "explain" in out and "predict" in out and "info" in out
    code, out, _ = run(capsys, "explain", "--help")
    assert code == 0 and "--all-classes" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("textlrp ")


def test_subcommands_of_other_modules_are_registered(capsys):
    _, out, _ = run(capsys, "--help")
    for command in ("train", "deletion", "data"):
        assert f"    {command}" in out, command
    code, out, _ = run(capsys, "deletion", "--help")
    assert code == 0 and "usage: textlrp deletion" in out


def _overflowing_model(path):
    """A one-unit LSTM whose cell state settles at c = -f: with the prop rule, eps 1e-6 and
    bias_factor 1 the relevance of a 100-word text overflows float64 (see
    test_engine_explanation), a 5-word text does not."""
    b = np.array([0.0, 0.0, np.arctanh(-0.5), 0.0])
    zero = np.zeros((4, 1))
    textlrp.from_arrays(np.ones((2, 1)), [[{"W_ih": zero, "W_hh": zero, "b": b}]],
                        [{"W": np.ones((2, 1)), "b": None}], vocab=["<unk>", "a"],
                        class_names=["x", "y"], unk_token="<unk>").save(path)
    return str(path)


OVERFLOW_OPTIONS = ("--rule", "prop", "--eps", "1e-6", "--bias-factor", "1")


def test_overflowing_relevance_becomes_an_error_record(capsys, tmp_path):
    """The API flags the input (Explanation.overflow); the CLI writes an error record for that
    line (the JSON promises finite numbers), says nothing else, and goes on."""
    model = _overflowing_model(tmp_path / "overflow.npz")
    path = write(tmp_path, "c.txt", ("a " * 5 + "\n" + "a " * 100 + "\n").encode())
    code, out, err = run(capsys, "explain", "-m", model, "-i", path, *OVERFLOW_OPTIONS)
    recs = json_lines(out)
    assert code == 0 and "relevance" in recs[0] and recs[0]["overflow"] is False
    assert recs[1] == {"line": 2, "text": "a " * 100, "error": outputs.OVERFLOW}
    assert "Warning" not in err and "1 of 2 lines" in err
    # with --all-classes too (every class of the line is explained at once)
    code, out, err = run(capsys, "explain", "-m", model, "-i", path, "--all-classes",
                         *OVERFLOW_OPTIONS)
    recs = json_lines(out)
    assert code == 0 and [r["target"] for r in recs[:2]] == [0, 1]
    assert recs[2] == {"line": 2, "text": "a " * 100, "error": outputs.OVERFLOW}


def test_overflowing_relevance_of_a_text_is_a_user_error(tmp_path):
    model = _overflowing_model(tmp_path / "overflow.npz")
    proc = run_textlrp("explain", "-m", model, "a " * 100, *OVERFLOW_OPTIONS)
    assert_one_line_error(proc, "larger --eps")
    proc = run_textlrp("explain", "-m", model, "a " * 5, *OVERFLOW_OPTIONS)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_keyboard_interrupt_gives_130(capsys, model_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(inputs, "load_model", interrupted)
    code, _, err = run(capsys, "explain", "-m", model_path, "hi")
    assert code == 130 and "Traceback" not in err


def _subprocess_env():
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORTERM")}
    return env


def test_python_dash_m_and_broken_pipe_are_quiet(model_path, tmp_path):
    corpus = tmp_path / "big.txt"
    corpus.write_text("the movie was great fun\n" * 1000)
    cmd = (f"{sys.executable} -m textlrp explain -m {model_path} -i {corpus} --batch-size 64 "
           f"| head -n 1")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                          env=_subprocess_env(), timeout=120, check=False)
    assert json.loads(proc.stdout)["line"] == 1
    assert proc.stderr == "", proc.stderr
    assert proc.returncode == 141


def test_default_model(capsys):
    from textlrp.io import default_model_path
    try:
        default_model_path()
    except FileNotFoundError:
        pytest.skip("the bundled default model is not installed")
    rec = json_lines(ok(capsys, "explain", "-f", "json", "a gripping , beautifully acted film"))[0]
    assert rec["class_names"] and rec["prediction_name"] in rec["class_names"]
    assert "model" in ok(capsys, "info")


# --------------------------------------------------------------------------- the console script

TEXTLRP = Path(sys.executable).with_name("textlrp")  # the entry point pip installed here


def console(*argv, env=None, stdin=None):
    if not TEXTLRP.exists():
        pytest.skip(f"the console script is not installed (looked for {TEXTLRP})")
    return subprocess.run([str(TEXTLRP), *map(str, argv)], capture_output=True, text=True,
                          env=_subprocess_env() if env is None else env, input=stdin,
                          timeout=120, check=False)


def assert_one_line_error(proc, match):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("textlrp: error: ") and match in lines[0], \
        proc.stderr
    return lines[0]


def test_console_unknown_output_suffix_is_an_error(model_path, tmp_path):
    target = tmp_path / "report.pdf"
    line = assert_one_line_error(console("explain", "-m", model_path, SENTENCE, "-o", target),
                                 "cannot tell the output format")
    assert ".html" in line and "--format" in line and not target.exists()
    assert_one_line_error(console("explain", "-m", model_path, SENTENCE, "-o", tmp_path / "x"),
                          "no suffix")
    # an explicit format needs no known suffix
    proc = console("explain", "-m", model_path, SENTENCE, "-f", "json", "-o", target)
    assert proc.returncode == 0 and json.loads(target.read_text())["tokens"]


def test_console_formats_come_from_the_registry(model_path):
    from textlrp import render

    proc = console("explain", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "{" + ",".join(render.format_names()) + "}" in text
    for name, cls in render.WRITERS.items():
        assert f"{name}: {cls.help}" in text
    for suffix, name in render.suffix_formats().items():
        assert f"{suffix} {name}" in text


def test_console_plain_text_shows_words_as_written(model_path):
    proc = console("explain", "-m", model_path, 'the "zorblax" ( movie ) ?', "--color", "never")
    assert proc.returncode == 0, proc.stderr
    words, summary, legend = proc.stdout.splitlines()
    assert ESC not in proc.stdout
    parsed = [re.fullmatch(r"(.+?)(\[\?\])?\(([-+]\d+\.\d\d)\)", w) for w in words.split()]
    assert all(parsed), words
    assert [m.group(1) for m in parsed] == ["the", '"', "zorblax", '"', "(", "movie", ")", "?"]
    # the small test model knows neither the word nor the treebank escapes
    assert [bool(m.group(2)) for m in parsed] == [False, True, True, True, True, False, True, True]
    assert "-lrb-" not in words and "``" not in words and "''" not in words
    assert re.search(r"\(score -?\d+\.\d\d, p \d\.\d\d\)", summary)
    assert re.search(r"sum [-+]\d+\.\d\d", summary) and "[?]: not in the vocabulary" in legend


def test_console_colours_values_and_the_scale_in_the_legend(model_path):
    env = {**_subprocess_env(), "COLORTERM": "truecolor"}
    proc = console("explain", "-m", model_path, SENTENCE, "--color", "always", "--values",
                   "--scale", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert "\x1b[48;2;" in first
    # every number follows a reset, in parentheses: never glued to the coloured word
    assert len(re.findall(r"\x1b\[0m\x1b\[2m\([-+]\d+\.\d\d\)\x1b\[0m", first)) == 8
    assert "colour scale: fixed, |relevance| >= 2 is full colour" in proc.stdout
    from textlrp.render import _palette as pal

    proc = console("explain", "-m", model_path, SENTENCE, "--color", "always", "--theme", "light")
    indices = {int(i) for i in re.findall(r"\x1b\[48;5;(\d+)m", proc.stdout)}
    assert indices and indices <= set(pal.XTERM["light"][1]) | set(pal.XTERM["light"][-1])
    assert "colour scale: each text's largest |relevance|" in proc.stdout


def test_console_report_scale_on_a_stream_is_the_running_maximum(model_path, tmp_path):
    path = write(tmp_path, "c.txt", b"great fun\nterrible plot , bad acting\nfun !\n")
    proc = console("explain", "-m", model_path, "-i", path, "-f", "ansi", "--color", "always",
                   "--scale", "report")
    assert proc.returncode == 0, proc.stderr
    recs = json_lines(console("explain", "-m", model_path, "-i", path).stdout)
    largest = max(abs(r) for rec in recs for r in rec["relevance"])
    assert f"colour scale: running maximum (largest |relevance| {largest:.2f})" in proc.stdout


def test_console_json_keeps_treebank_and_display_tokens(model_path):
    proc = console("explain", "-m", model_path, '( "great" )', "-f", "json")
    rec = json.loads(proc.stdout)
    from test_render import check_schema
    check_schema(rec)
    assert rec["tokens"] == ["-lrb-", "``", "great", "''", "-rrb-"]
    assert rec["display"] == ["(", '"', "great", '"', ")"]


def test_console_html_report_with_labels_and_all_classes(model_path, tmp_path):
    from test_render import report_data

    path = write(tmp_path, "d.tsv", b"label\ttext\nneutral\tgreat fun ( really )\n"
                                    b"4\tbad plot\n9\tfun\n")
    out = tmp_path / "r.html"
    proc = console("explain", "-m", model_path, "-i", path, "--column", "text", "--label-column",
                   "label", "--all-classes", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    meta, records = report_data(out.read_text(encoding="utf-8"))
    assert meta["classes"] == CLASSES and meta["scale"] == "sentence"
    assert [r["n"] for r in records] == [2, 3, 4]
    assert records[0]["g"] == 2 and records[1]["g"] == 4 and "not a class" in records[2]["e"]
    assert [row[0] for row in records[0]["r"]] == list(range(len(CLASSES)))  # one record, 5 rows
    assert records[0]["w"] == "great fun ( really )"  # tokens joined by spaces
    recs = json_lines(console("predict", "-m", model_path, "-i", path, "--column", "2",
                              "--label-column", "1", "--header", "-q").stdout)
    assert recs[0]["label"] == 2 and recs[0]["label_name"] == "neutral"
    assert recs[2] == {"line": 4, "text": "fun", "error": recs[2]["error"]}
