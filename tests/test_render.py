"""Rendering: the writer registry, the colour scale (sign, monotonicity, contrast), terminal
output, the one JSON schema, TSV, and the HTML report (escaping, compactness, and, where
headless Chromium is installed, what the page draws)."""

from __future__ import annotations

import colorsys
import html
import io
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from textlrp import Explanation, Prediction, render
from textlrp.render import _palette as pal
from textlrp.render import _writer

ESC = "\x1b"
CLASSES = ["neg", "pos"]
SGR = re.compile(r"\x1b\[[0-9;]*m")


def make_exp(tokens, relevance, *, oov=None, text=None, scores=(0.2, 1.3), target=1,
             method="lrp", rest=0.01, class_names=CLASSES, params=None):
    n = len(tokens)
    return Explanation(
        tokens=list(tokens), ids=np.arange(n, dtype=np.int64),
        relevance=np.asarray(relevance, dtype=np.float64),
        scores=np.asarray(scores, dtype=np.float64), class_names=list(class_names),
        prediction=int(np.argmax(scores)), target=target, method=method,
        oov=np.zeros(n, bool) if oov is None else np.asarray(oov, bool),
        text=text if text is not None else " ".join(tokens), rest=rest,
        params={"rule": "signal-take-all", "eps": 0.001, "bias_factor": 0.0} if params is None else params,
    )


def hue(c):
    h, _l, s = colorsys.rgb_to_hls(*(u / 255 for u in c))
    return 360 * h, s


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_four_formats_with_their_suffixes():
    assert render.format_names() == ["ansi", "html", "json", "tsv"]
    assert render.suffix_formats() == {".txt": "ansi", ".html": "html", ".htm": "html",
                                       ".json": "json", ".jsonl": "json", ".ndjson": "json",
                                       ".tsv": "tsv"}
    for name, cls in render.WRITERS.items():
        assert cls.name == name and cls.help and issubclass(cls, render.Writer)
        for method in ("begin", "explanation", "prediction", "error", "end"):
            assert callable(getattr(cls, method))


@pytest.mark.parametrize("path, fmt", [("a/report.HTML", "html"), ("x.jsonl", "json"),
                                       ("t.tsv", "tsv"), ("out.txt", "ansi")])
def test_format_for_path(path, fmt):
    assert render.format_for_path(path) == fmt


@pytest.mark.parametrize("path", ["report.pdf", "results", "archive.tar.gz"])
def test_unknown_or_missing_suffix_is_an_error(path):
    with pytest.raises(ValueError, match="--format"):
        render.format_for_path(path)


def test_a_new_format_is_one_registered_class(monkeypatch):
    monkeypatch.setattr(_writer, "WRITERS", dict(_writer.WRITERS))

    @_writer.register
    class Upper(render.Writer):
        name = "upper"
        suffixes = (".up",)
        help = "shouting"

        def explanation(self, exps, *, line=None, label=None):
            self.out.write(" ".join(_writer.as_list(exps)[0].tokens).upper() + "\n")

    assert _writer.format_for_path("x.up") == "upper" and "upper" in _writer.format_names()
    buf = io.StringIO()
    _writer.make_writer("upper", buf).explanation(make_exp(["a", "b"], [1.0, -1.0]))
    assert buf.getvalue() == "A B\n"
    with pytest.raises(ValueError, match="unique name"):
        _writer.register(type("Again", (render.Writer,), {"name": "upper"}))
    with pytest.raises(ValueError, match="suffixes"):
        _writer.register(type("Clash", (render.Writer,), {"name": "clash", "suffixes": (".html",)}))
    with pytest.raises(ValueError, match="unknown format"):
        _writer.make_writer("pdf", buf)


def test_writer_options_are_checked():
    with pytest.raises(ValueError, match="kind"):
        render.WriterOptions(kind="train")
    with pytest.raises(ValueError, match="color"):
        render.WriterOptions(color="rainbow")
    with pytest.raises(ValueError, match="theme"):
        render.WriterOptions(theme="sepia")
    with pytest.raises(ValueError, match="scale"):
        render.WriterOptions(scale="paragraph")


# --------------------------------------------------------------------------- colours

TINY = [1e-12, 1e-6, 1e-3, 0.01, 0.04, 0.1]
GRID = sorted(set(TINY) | {float(v) for v in np.linspace(0.0, 1.0, 101)[1:]})


@pytest.mark.parametrize("theme", pal.THEMES)
def test_every_nonzero_value_keeps_its_side_in_truecolor(theme):
    assert pal.ramp_color(0.0, theme) is None and pal.ramp_color(float("nan"), theme) is None
    for v in GRID:
        red, blue = pal.ramp_color(v, theme), pal.ramp_color(-v, theme)
        assert red[0] > red[2] + 15, (v, red)     # red side, however weak
        assert blue[2] > blue[0] + 15, (v, blue)  # blue side
        for c in (red, blue):
            assert max(c) - min(c) >= 20, (v, c)  # a tint, never a neutral grey
    assert pal.ramp_color(7.0, theme) == pal.ramp_color(1.0, theme)  # clipped


@pytest.mark.parametrize("theme", pal.THEMES)
def test_truecolor_ramp_is_monotone_on_both_sides(theme):
    # Light theme: stronger = darker; dark theme: stronger = brighter (away from the ground).
    sign = -1 if theme == "light" else 1
    for side in (1, -1):
        lum = [pal.luminance(pal.ramp_color(side * v, theme)) for v in GRID]
        assert all(sign * (b - a) >= 0 for a, b in zip(lum, lum[1:])), (theme, side)
        assert sign * (lum[-1] - lum[0]) > 0.1


@pytest.mark.parametrize("theme", pal.THEMES)
def test_256_colour_steps_keep_the_sign_and_are_monotone(theme):
    sign = -1 if theme == "light" else 1
    assert pal.xterm_color(0.0, theme) is None
    for side in (1, -1):
        table = pal.XTERM[theme][side]
        rgbs = [pal.xterm_rgb(i) for i in table]
        lum = [pal.luminance(c) for c in rgbs]
        assert all(sign * (b - a) > 0 for a, b in zip(lum, lum[1:])), (theme, side, table)
        for c in rgbs:
            assert 16 <= table[0] <= 231 and len(set(c)) > 1  # a cube colour, not a grey
            assert (c[0] > c[2]) if side > 0 else (c[2] > c[0]), (theme, side, c)
        # over the values: the step never goes back, and tiny values get the first step
        steps = [table.index(pal.xterm_color(side * v, theme)) for v in GRID]
        assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == len(table) - 1
        for v in TINY:
            assert pal.xterm_color(side * v, theme) == table[0]


@pytest.mark.parametrize("theme", pal.THEMES)
def test_strongest_words_are_red_and_blue_not_magenta(theme):
    for rgb in (pal.ramp_color(1.0, theme), pal.xterm_rgb(pal.xterm_color(1.0, theme))):
        h, s = hue(rgb)
        assert (h <= 15 or h >= 345) and s > 0.4, (theme, rgb, h)
        assert rgb[2] < rgb[0] / 2  # blue well below red: not magenta or pink
    for rgb in (pal.ramp_color(-1.0, theme), pal.xterm_rgb(pal.xterm_color(-1.0, theme))):
        h, s = hue(rgb)
        assert 195 <= h <= 235 and s > 0.4, (theme, rgb, h)


@pytest.mark.parametrize("theme", pal.THEMES)
def test_text_on_every_background_meets_wcag_aa(theme):
    for v in np.linspace(-1, 1, 81):
        bg = pal.ramp_color(float(v), theme)
        if bg is not None:
            assert pal.contrast(bg, pal.text_color(bg)) >= 4.5, (v, bg)
    for side in (1, -1):
        for index in pal.XTERM[theme][side]:
            bg = pal.xterm_rgb(index)
            assert pal.contrast(bg, pal.text_color(bg)) >= 4.5, (index, bg)


def test_xterm_rgb():
    assert pal.xterm_rgb(196) == (255, 0, 0) and pal.xterm_rgb(16) == (0, 0, 0)
    assert pal.xterm_rgb(232) == (8, 8, 8) and pal.xterm_rgb(255) == (238, 238, 238)


def test_steps_give_every_nonzero_value_at_least_the_first_step():
    assert pal.step(0.0, 16) == 0 and pal.step(1e-300, 16) == 1 and pal.step(-1e-300, 16) == -1
    assert pal.step(1.0, 16) == 16 and pal.step(-5.0, 16) == -16 and pal.step(0.5, 16) == 8


def test_html_step_classes_follow_the_ramp():
    css, _js = render.html._assets()
    light, dark = css.split("@media (prefers-color-scheme:dark){\n")[-2:]
    for block in (light, dark):
        rules = dict(re.findall(r"\.tlrp \.([pn]\d+)\{background:(#[0-9a-f]{6})", block))
        assert len(rules) == 2 * render.html.STEPS
        for name, color in rules.items():
            r, _g, b = pal.hex_rgb(color)
            assert (r > b) if name[0] == "p" else (b > r), (name, color)


# --------------------------------------------------------------------------- scale


def test_scale_values():
    assert pal.check_scale("sentence") == "sentence" and pal.check_scale("report") == "report"
    assert pal.check_scale("2.5") == 2.5 and pal.check_scale(3) == 3.0
    for bad in ("0", "-1", "inf", "nan", "big", True):
        with pytest.raises(ValueError):
            pal.check_scale(bad)


def test_scaler_sentence_report_and_fixed():
    s = pal.Scaler("sentence")
    assert s.full([[1.0, -3.0]]) == 3.0 and s.full([[0.5]]) == 0.5
    assert s.full([[1.0], [-4.0, np.nan]]) == 4.0  # all rows of one text share its scale
    r = pal.Scaler("report")
    assert r.full([[2.0]]) == 2.0 and r.full([[1.0]]) == 2.0 and r.full([[5.0]]) == 5.0
    assert "running maximum" in r.describe() and "5.00" in r.describe()
    f = pal.Scaler(0.5)
    assert f.full([[9.0]]) == 0.5 and "0.5" in f.describe()
    assert "each text" in s.describe()
    np.testing.assert_allclose(pal.scaled([1.0, -4.0, 0.5], 2.0), [0.5, -1.0, 0.25])
    np.testing.assert_array_equal(pal.scaled([1.0, np.inf], 0.0), [0.0, 0.0])


# --------------------------------------------------------------------------- terminal


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("env, tty, expected", [
    ({}, False, "none"),
    ({"COLORTERM": "truecolor"}, False, "none"),
    ({"COLORTERM": "truecolor"}, True, "truecolor"),
    ({"COLORTERM": "24bit"}, True, "truecolor"),
    ({}, True, "256"),
    ({"NO_COLOR": "1", "COLORTERM": "truecolor"}, True, "none"),
    ({"NO_COLOR": ""}, True, "256"),  # no-color.org: only a non-empty value counts
    ({"TERM": "dumb"}, True, "none"),
])
def test_detect_color(env, tty, expected):
    stream = FakeTTY() if tty else io.StringIO()
    assert render.detect_color(stream, env) == expected


@pytest.mark.parametrize("colorfgbg, theme", [("15;0", "dark"), ("0;15", "light"), ("", "light"),
                                               ("default;default", "light"), ("7;8", "dark")])
def test_detect_theme(colorfgbg, theme):
    assert render.detect_theme({"COLORFGBG": colorfgbg}) == theme


def test_plain_text_marks_unknown_words_unambiguously():
    exp = make_exp(["what", "zorb", "?", "film"], [0.1, 2.0, -0.5, 0.0], oov=[0, 1, 0, 0])
    out = render.to_ansi(exp, color="none")
    assert ESC not in out
    assert out.splitlines()[0] == "what(+0.10) zorb[?](+2.00) ?(-0.50) film(+0.00)"
    assert "predicted pos" in out and "explained pos" in out and "lrp (signal-take-all, eps 0.001" in out
    assert out.splitlines()[-1].endswith("[?]: not in the vocabulary")
    # a literal "?" token is never mistaken for the mark
    assert "[?]: not in the vocabulary" not in render.to_ansi(make_exp(["?"], [1.0]), color="none")


@pytest.mark.parametrize("relevance, shown", [
    ([1.5, -0.25], "a(+1.50) b(-0.25)"),
    ([0.812, -0.53], "a(+0.81) b(-0.53)"),  # the same two decimals, whatever the magnitude
    ([4.35, 0.0123], "a(+4.35) b(+0.01)"),
    ([123.4, 1.0], "a(+123.40) b(+1.00)"),
    ([0.0012, -0.0001], "a(+1.20e-03) b(-1.00e-04)"),  # all would round to zero
    ([3e30, -1.0], "a(+3.00e+30) b(-1.00e+00)"),
    ([0.0, 0.0], "a(+0.00) b(+0.00)"),
])
def test_numbers_have_one_precision(relevance, shown):
    exp = make_exp(["a", "b"], relevance)
    assert render.to_ansi(exp, color="none", legend=False).splitlines()[0] == shown


def test_scores_probabilities_and_sums_have_two_decimals():
    exp = make_exp(["a", "b"], [1.0, -0.25], scores=(0.2, 1.6), rest=0.0123)
    summary = render.to_ansi(exp, color="none").splitlines()[1]
    assert "(score 1.60, p 0.80)" in summary and "sum +0.75, rest +0.01" in summary
    numbers = re.findall(r"[-+]?\d+\.\d+", summary.replace("0.001", ""))
    assert numbers and all(len(n.split(".")[1]) == 2 for n in numbers), numbers


def test_values_in_colour_are_not_glued_to_the_word():
    exp = make_exp(["a", "film"], [0.18, -1.0])
    out = render.to_ansi(exp, color="256", values=True, theme="light", legend=False)
    first = out.splitlines()[0]
    assert re.search(r"a\x1b\[0m\x1b\[2m\(\+0\.18\)\x1b\[0m", first)
    assert SGR.sub("", first) == "a(+0.18) film(-1.00)"


def test_treebank_escapes_are_shown_as_written():
    tokens = ["-lrb-", "not", "-rrb-", "``", "great", "''", "-LSB-", "`", "it"]
    exp = make_exp(tokens, [0.1] * len(tokens))
    assert exp.display == ["(", "not", ")", '"', "great", '"', "[", "'", "it"]
    assert exp.tokens == tokens  # the treebank form stays for the vocabulary
    for color in ("none", "256", "truecolor"):
        words = SGR.sub("", render.to_ansi(exp, color=color, values=True, legend=False)).split()
        assert [w.split("(+")[0] for w in words[:len(tokens)]] == exp.display


def test_truecolor_paints_the_extremes_with_the_scale_ends_and_tints_weak_words():
    exp = make_exp(["good", "bad", "the", "a", "zero"], [3.0, -3.0, 0.01, -0.01, 0.0])
    out = render.to_ansi(exp, color="truecolor", theme="light", legend=False).splitlines()[0]
    assert "\x1b[48;2;178;24;43m\x1b[38;2;255;255;255mgood\x1b[0m" in out
    assert "\x1b[48;2;33;102;172m\x1b[38;2;255;255;255mbad\x1b[0m" in out
    weak_pos = re.search(r"\x1b\[48;2;(\d+);(\d+);(\d+)m\x1b\[38;2;0;0;0mthe", out).groups()
    weak_neg = re.search(r"\x1b\[48;2;(\d+);(\d+);(\d+)m\x1b\[38;2;0;0;0ma\x1b", out).groups()
    assert int(weak_pos[0]) > int(weak_pos[2]) and int(weak_neg[2]) > int(weak_neg[0])
    assert out.endswith(" zero")  # exactly zero: uncoloured


def test_256_colour_output_uses_the_steps():
    exp = make_exp(["good", "your", "is"], [1.0, -0.08, 0.32])
    out = render.to_ansi(exp, color="256", theme="light", legend=False)
    light = pal.XTERM["light"]
    assert f"\x1b[48;5;{light[1][-1]}m" in out              # strongest: red end
    assert f"\x1b[48;5;{light[-1][0]}m\x1b[38;5;16myour" in out  # weak negative: light blue
    assert f"\x1b[48;5;{light[1][1]}m\x1b[38;5;16mis" in out     # weak positive: light red


def test_legend_states_the_scale():
    exp = make_exp(["a", "b"], [2.0, -1.0])
    assert "colour scale: each text's largest |relevance|" in render.to_ansi(exp, color="256")
    assert "|relevance| >= 4 is full colour" in render.to_ansi(exp, color="256", scale=4)
    assert "running maximum" in render.to_ansi(exp, color="256", scale="report")


def test_fixed_and_report_scale_change_the_colours():
    strong = make_exp(["x"], [2.0])
    weak = make_exp(["y"], [0.5])
    full = pal.xterm_color(1.0, "light")
    assert f"48;5;{full}m" in render.to_ansi(weak, color="256", theme="light")
    faint = render.to_ansi(weak, color="256", theme="light", scale=10)
    assert f"48;5;{pal.XTERM['light'][1][0]}m" in faint
    buf = io.StringIO()
    w = render.make_writer("ansi", buf, render.WriterOptions(color="256", scale="report"))
    w.explanation(strong)
    w.explanation(weak)  # the running maximum is 2: 0.5 is a quarter
    w.end()
    second = buf.getvalue().splitlines()[2]
    assert f"48;5;{pal.xterm_color(0.25, 'light')}m" in second and "largest |relevance| 2.00" \
        in buf.getvalue()


def test_wrapping_between_words():
    exp = make_exp(["alpha", "beta", "gamma", "delta", "epsilon"], [1.0, -1.0, 0.5, 0.2, 0.0])
    out = render.to_ansi(exp, color="truecolor", theme="light", width=12, legend=False)
    lines = [SGR.sub("", line) for line in out.split("\n")[:3]]
    assert lines == ["alpha beta", "gamma delta", "epsilon"]
    long = make_exp(["a" * 30], [1.0])  # a word longer than the line stays whole
    assert render.to_ansi(long, color="none", width=10).splitlines()[0] == "a" * 30 + "(+1.00)"


def test_summary_and_legend_wrap_at_their_separators():
    exp = make_exp(["a", "zorb"], [1.0, -1.0], oov=[0, 1])
    out = render.to_ansi(exp, color="256", theme="light", width=50)
    plain = [SGR.sub("", line) for line in out.split("\n")]
    assert plain[1].startswith("predicted pos") and plain[2].startswith("  explained pos")
    assert plain[3].startswith("  lrp (signal-take-all")
    assert "underlined: not in the vocabulary" in plain and all(len(line) <= 50 for line in plain)


def test_control_and_bidi_characters_do_not_reach_the_terminal():
    exp = make_exp(["evil\x1b[2J", "\u202eok", "bell\x07"], [1.0, -1.0, 0.5],
                   class_names=["n\x1b]0;title\x07", "p"], target=0, scores=(1.0, 0.0))
    for color in ("none", "256", "truecolor"):
        out = SGR.sub("", render.to_ansi(exp, color=color))
        assert ESC not in out and "\u202e" not in out and "\x07" not in out


def test_all_classes_block_marks_the_prediction_and_shares_the_scale():
    exps = [make_exp(["a", "b"], [1.0, -1.0], target=0), make_exp(["a", "b"], [4.0, -2.0], target=1)]
    lines = render.to_ansi(exps, color="none", legend=False).splitlines()
    assert len(lines) == 3 and lines[0].startswith("predicted pos")
    assert lines[1].startswith("  neg ") and lines[2].startswith("* pos ")
    colored = render.to_ansi(exps, color="256", theme="light", legend=False).splitlines()
    # one scale for the text: 1.0 in the first row is a quarter of the largest, 4.0
    assert f"48;5;{pal.xterm_color(0.25, 'light')}m\x1b[38;5;16ma" in colored[1]


def test_prediction_bars():
    pred = Prediction("a b", ["a", "b"], np.zeros(2, bool), np.array([0.0, np.log(3.0)]),
                      ["neg", "pos"])
    assert pred.prediction == 1 and pred.prediction_name == "pos" and render.Prediction is Prediction
    np.testing.assert_allclose(pred.probabilities, [0.25, 0.75])
    lines = render.prediction_to_ansi(pred, color="none").splitlines()
    assert lines[0] == "predicted pos (score 1.10, p 0.75)"
    assert lines[2].count("█") == 18 and lines[1].count("█") == 6  # 0.75 and 0.25 of 24 cells
    assert lines[1].endswith(" 0.25")


# --------------------------------------------------------------------------- JSON


SCHEMA = {"text": (str, type(None)), "tokens": list, "display": list, "relevance": list,
          "scores": list, "probabilities": (list, type(None)), "regression": bool,
          "class_names": list, "prediction": (int, float),
          "prediction_name": str, "target": int, "target_name": str, "method": str, "oov": list,
          "rest": (float, type(None)), "params": dict, "overflow": bool}


def check_schema(record):
    keys = set(record) - {"line", "label", "label_name"}
    assert keys == set(SCHEMA), keys ^ set(SCHEMA)
    for key, types in SCHEMA.items():
        assert isinstance(record[key], types), (key, record[key])
    n = len(record["tokens"])
    assert len(record["relevance"]) == n == len(record["oov"]) == len(record["display"])
    assert len(record["scores"]) == len(record["class_names"]) == len(record["probabilities"])
    assert all(isinstance(t, str) for t in record["tokens"] + record["class_names"])
    assert all(isinstance(b, bool) for b in record["oov"])
    assert record["prediction_name"] == record["class_names"][record["prediction"]]
    assert record["target_name"] == record["class_names"][record["target"]]
    assert abs(sum(record["probabilities"]) - 1.0) < 1e-9


def test_to_dict_is_the_one_schema_and_json_ready():
    exp = make_exp(["-lrb-", "b\nc"], [np.float32(0.5), -0.25], oov=[1, 0], text='x "y"\n')
    d = exp.to_dict()
    check_schema(d)
    assert d["tokens"] == ["-lrb-", "b\nc"] and d["display"] == ["(", "b\nc"]
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    line = render.to_json(exp, line=7)
    assert "\n" not in line
    assert json.loads(line) == {"line": 7, **d}
    buf = io.StringIO()
    render.make_writer("json", buf).explanation(exp, line=3, label=0)
    assert json.loads(buf.getvalue()) == {"line": 3, **d, "label": 0, "label_name": "neg"}


def test_to_dict_turns_non_finite_numbers_into_null():
    exp = make_exp(["a", "b"], [np.nan, np.inf], rest=float("nan"), scores=(0.0, np.inf),
                   params={"eps": float("inf"), "x": np.array([np.nan, 1.0])})
    d = exp.to_dict()
    json.dumps(d, allow_nan=False)  # does not raise
    assert d["relevance"] == [None, None] and d["rest"] is None and d["scores"][1] is None
    assert d["params"] == {"eps": None, "x": [None, 1.0]}


def test_to_dict_numpy_params_are_plain():
    exp = make_exp(["a"], [1.0], params={"seed": np.int64(3), "eps": np.float32(0.5), "x": np.arange(2)})
    assert exp.to_dict()["params"] == {"seed": 3, "eps": 0.5, "x": [0, 1]}


def test_prediction_to_dict():
    pred = Prediction("a\tb", ["-lrb-", "b"], np.array([False, True]), np.array([0.0, 0.0]), ["n", "p"])
    d = pred.to_dict()
    assert set(d) == {"text", "tokens", "display", "oov", "scores", "probabilities", "class_names",
                      "prediction", "prediction_name"}
    assert d["display"] == ["(", "b"] and d["probabilities"] == [0.5, 0.5] and d["prediction"] == 0
    assert json.loads(render.prediction_to_json(pred, line=1)) == {"line": 1, **d}


def test_error_record():
    assert json.loads(render.error_record(4, "", "empty line")) == {"line": 4, "text": "", "error": "empty line"}


# --------------------------------------------------------------------------- TSV


def test_tsv_rows_and_escaping():
    exp = make_exp(["a\tb", "-lrb-"], [0.5, -1.0], oov=[0, 1])
    out = render.to_tsv(exp, line=2, header=True).splitlines()
    assert out[0] == "line\ttarget\tposition\ttoken\tdisplay\trelevance\toov"
    assert out[1] == "2\tpos\t0\ta\\tb\ta\\tb\t0.5\t0"
    assert out[2] == "2\tpos\t1\t-lrb-\t(\t-1.0\t1"
    assert render.to_tsv(exp).splitlines()[0].split("\t")[0] == "pos"


def test_tsv_writer_predictions_labels_and_errors():
    buf, log = io.StringIO(), io.StringIO()
    w = render.make_writer("tsv", buf, render.WriterOptions(
        kind="predict", class_names=("n", "p"), lines=True, labels=True, log=log))
    w.begin()
    w.prediction(Prediction("a\tb", ["a", "b"], np.zeros(2, bool), np.zeros(2), ["n", "p"]),
                 line=1, label=1)
    w.error("bad \x1b[2J line", line=2, text="x")
    w.end()
    assert buf.getvalue().splitlines() == ["line\tlabel\ttext\tprediction\tp_n\tp_p",
                                           "1\tp\ta\\tb\tn\t0.5\t0.5"]
    assert log.getvalue() == "textlrp: line 2: bad \ufffd[2J line\n"


# --------------------------------------------------------------------------- HTML


def report_data(page):
    """(meta, records) of an HTML report."""
    meta = re.search(r'<script type="application/json" class="tlrp-meta">(.*?)</script>', page, re.DOTALL)
    data = re.search(r'<script type="application/json" class="tlrp-data">\n(.*?)</script>', page, re.DOTALL)
    assert meta and data, "no data blocks"
    return json.loads(meta.group(1)), [json.loads(line) for line in data.group(1).splitlines()]


HOSTILE = ["<script>alert(1)</script>", "</script><b>x", '" onmouseover="x', "'single'",
           "&amp;", "<!--", "\u202eevil", "next", "line\u2028sep", "ctl\x00\x07\x1b[2J"]


def hostile_page(surrogate=True):
    # A lone surrogate must not break the page's encoding (Chromium cannot dump a DOM
    # holding one, so the browser tests leave it out).
    tokens = HOSTILE + ["\ud800"] * surrogate
    exp = make_exp(tokens, np.linspace(-1, 1, len(tokens)), text=" ".join(HOSTILE),
                   target=0, class_names=["<b>neg</b>", '"pos"\u202e'])
    buf = io.StringIO()
    w = render.make_writer("html", buf, render.WriterOptions(
        class_names=exp.class_names, lines=True, title='<img src=x onerror="alert(2)"></title>',
        subtitle="</script>"))
    w.begin()
    w.explanation(exp, line=1)
    w.error("bad <script>x</script>", line=2, text="</script>\u2029")
    w.end()
    return buf.getvalue(), exp


def test_html_escapes_everything_from_users_and_files():
    page, _ = hostile_page()
    # the only tags are ours: exactly three <script> elements, nothing else from the data
    assert page.count("<script") == 3 and page.count("</script>") == 3
    assert "<b>" not in page and "<img" not in page and "<!--" not in page
    assert '" onmouseover="x' not in page and 'onerror="' not in page
    assert "\u2028" not in page and "\u2029" not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;&lt;/title&gt;" in page
    meta, records = report_data(page)
    assert meta["classes"] == ["<b>neg</b>", '"pos"\u202e'] and meta["kind"] == "explain"
    shown = records[0]["w"]  # a list: some tokens hold spaces
    assert shown[:9] == HOSTILE[:9]  # the data round-trips, bidi controls included
    assert shown[9] == "ctl\ufffd\ufffd\ufffd[2J"  # controls shown as U+FFFD
    assert records[1] == {"n": 2, "s": "</script>\u2029", "e": "bad <script>x</script>"}
    page.encode("utf-8")  # a lone surrogate was escaped, so the page is valid UTF-8


def test_html_page_is_self_contained():
    page = render.to_html([make_exp(["good", "zorb"], [2.0, -1.0], oov=[0, 1])])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"\b(src|href)=|@import|url\(|https?://", page)
    assert "prefers-color-scheme:dark" in page and "<noscript" in page
    js = render.html._assets()[1]
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js
    assert "document.write" not in js


def test_html_records_are_compact():
    words = ["a", "gripping", ",", "beautifully", "acted", "film", ",", "though", "the", "ending", "is", "a", "letdown", "."]
    rng = np.random.default_rng(0)
    exp = make_exp(words, rng.normal(0, 1.5, len(words)), scores=(0.1, 0.3, 0.7, 1.1, 0.2),
                   class_names=["vn", "n", "neu", "p", "vp"], target=3)
    buf = io.StringIO()
    w = render.make_writer("html", buf, render.WriterOptions(class_names=exp.class_names, lines=True))
    w.explanation(exp, line=12345, label=2)
    line = buf.getvalue()
    assert len(line.encode()) < 340, line  # 69 characters of text, 14 tokens
    rec = json.loads(line)
    assert rec["w"] == " ".join(words) and rec["p"] == 3 and rec["g"] == 2 and rec["n"] == 12345
    # numbers: three significant digits of the largest, never a non-zero rounded to 0
    np.testing.assert_allclose(rec["r"][0][1], exp.relevance, atol=0.006)
    tiny = make_exp(["a", "b"], [4.0, -1e-5])
    buf = io.StringIO()
    render.make_writer("html", buf).explanation(tiny)
    assert json.loads(buf.getvalue())["r"][0][1] == [4, -1e-05]


def test_html_all_classes_is_one_record_with_a_row_per_class():
    exps = [make_exp(["a", "b"], [1.0, -1.0], target=t) for t in (0, 1)]
    buf = io.StringIO()
    render.make_writer("html", buf).explanation(exps)
    rec = json.loads(buf.getvalue())
    assert [row[0] for row in rec["r"]] == [0, 1] and rec["q"] == [0.25, 0.75]


def test_explanation_repr_html_is_an_escaped_fragment():
    out = make_exp(HOSTILE[:3], [1.0, -1.0, 0.0])._repr_html_()
    assert out.startswith('<div class="tlrp">') and "<html" not in out
    assert out.count("<script") == 3 and "<b>" not in out


# --------------------------------------------------------------------------- in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                    "(looked for chromium, chromium-browser, google-chrome)")

PROBE = """<script>
(function () {
  var root = document.querySelector(".tlrp"), out = {};
  out.ready = root.getAttribute("data-ready");
  var items = root.querySelectorAll(".tlrp-item");
  out.items = items.length;
  var first = items[0];
  var toks = first ? Array.prototype.slice.call(first.querySelectorAll(".tk")) : [];
  out.tokens = toks.map(function (t) { return t.textContent; });
  out.tags = toks.map(function (t) { return t.tagName; });
  out.classes = toks.map(function (t) { return t.className; });
  out.pos = toks.map(function (t) { var r = t.getBoundingClientRect(); return [r.top, r.left]; });
  out.heights = toks.map(function (t) { return t.getClientRects().length; });
  out.scripts = document.querySelectorAll("script").length;
  out.bold = root.querySelectorAll(".tlrp-list b").length;
  function set(sel, value) { var s = root.querySelector(sel); s.value = value;
    s.dispatchEvent(new Event("change")); return root.querySelectorAll(".tlrp-item").length; }
  var selects = root.querySelectorAll(".tlrp-bar select");
  out.selects = selects.length;
  %s
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def in_chromium(tmp_path, page, extra=""):
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", PROBE % extra + "</body>"), encoding="utf-8")
    proc = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--window-size=1000,800", "--dump-dom", path.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, proc.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@needs_chromium
def test_browser_draws_hostile_tokens_as_isolated_text(tmp_path):
    page, exp = hostile_page(surrogate=False)
    out = in_chromium(tmp_path, page)
    assert out["ready"] == "1" and out["items"] == 2 and out["scripts"] == 3 + 1  # + the probe
    assert out["bold"] == 2  # the predicted and explained class names: no markup from the data
    assert out["tags"] == ["BDI"] * len(HOSTILE)
    assert out["tokens"][:9] == HOSTILE[:9]
    # an unterminated U+202E in one token does not reverse the tokens after it: they stay in
    # reading order, line by line and left to right
    pos = out["pos"]
    assert pos == sorted(pos), pos
    # every token on one line box: never wrapped inside itself
    assert all(n == 1 for n in out["heights"])
    # weak and strong values keep their side: first half blue steps, second half red
    shades = [re.search(r"\b([pn])(\d+)\b", c) for c in out["classes"]]
    signs = [m.group(1) if m else "" for m in shades]
    rel = exp.relevance
    assert all(s == ("p" if r > 0 else "n" if r < 0 else "") for s, r in zip(signs, rel)), signs


@needs_chromium
def test_browser_filters_sorts_and_counts(tmp_path):
    rng = np.random.default_rng(1)
    names = ["vn", "n", "neu", "p", "vp"]
    buf = io.StringIO()
    w = render.make_writer("html", buf, render.WriterOptions(
        class_names=names, lines=True, labels=True))
    w.begin()
    expected_wrong = 0
    for k in range(300):
        scores = rng.normal(0, 2, 5)
        exp = make_exp(["-lrb-", f"w{k}", "-rrb-"], rng.normal(0, 1, 3), scores=scores,
                       class_names=names, target=int(np.argmax(scores)), text=f"( w{k} )")
        label = k % 5
        expected_wrong += label != exp.prediction
        w.explanation(exp, line=k + 1, label=label)
    w.error("empty line", line=301, text="")
    w.end()
    probe = """
  out.page = root.querySelectorAll(".tlrp-item").length;
  out.summary = root.querySelector(".tlrp-summary").textContent;
  out.wrong = set(".tlrp-bar label:nth-of-type(2) select", "wrong");
  out.failed = set(".tlrp-bar label:nth-of-type(2) select", "failed");
  set(".tlrp-bar label:nth-of-type(2) select", "");
  set(".tlrp-bar label:nth-of-type(3) select", "conf-");
  out.lowest = Array.prototype.map.call(root.querySelectorAll(".tlrp-item"), function (a) {
    return a.querySelector(".tlrp-meta .tlrp-muted").textContent; }).slice(0, 5);
  var search = root.querySelector(".tlrp-bar input[type=search]");
  search.value = "W137"; search.dispatchEvent(new Event("change"));
  out.found = root.querySelectorAll(".tlrp-item").length;
  out.firstText = root.querySelector(".tlrp-item .tlrp-toks").textContent;
  var box = root.querySelector(".tlrp-bar input[type=checkbox]");
  box.checked = true; box.dispatchEvent(new Event("change"));
  out.shownum = root.classList.contains("tlrp-shownum");
  out.after = getComputedStyle(root.querySelector(".tk"), "::after").content;
"""
    out = in_chromium(tmp_path, buf.getvalue(), probe)
    assert out["page"] == 200  # the first page; the rest as the reader scrolls
    assert "300 texts" in out["summary"] and "1 input line failed" in out["summary"]
    assert f"{300 - expected_wrong} of 300 labelled" in out["summary"]
    assert out["wrong"] == min(200, expected_wrong) and out["failed"] == 1
    lowest = [float(s.split()[1]) for s in out["lowest"]]
    assert lowest == sorted(lowest)
    assert out["found"] == 1 and out["firstText"] == "( w137 )"  # treebank escapes shown as written
    assert out["shownum"] and re.search(r"[-+]\d\.\d\d", out["after"])


@needs_chromium
def test_browser_draws_a_notebook_fragment_without_controls(tmp_path):
    exp = make_exp(["-lrb-", "not", "-rrb-", "bad"], [0.5, -1.0, 0.25, 2.0])
    page = "<!DOCTYPE html><html><body><p>cell</p>" + exp._repr_html_() + "</body></html>"
    out = in_chromium(tmp_path, page)
    assert out["ready"] == "1" and out["items"] == 1 and out["selects"] == 0
    assert out["tokens"] == ["(", "not", ")", "bad"]


def test_number_helper_of_the_page_data():
    assert render.html._num(0.0, 2) == "0" and render.html._num(-0.004, 2) == "-4.0e-03"
    assert render.html._num(math.inf, 2) == "null" and render.html._num(1.2345, 2) == "1.23"
