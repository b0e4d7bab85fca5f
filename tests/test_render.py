"""Rendering: colour scale and contrast, terminal detection, HTML escaping, JSON schema, TSV."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from textlrp import Explanation, render

ESC = "\x1b"
CLASSES = ["neg", "pos"]


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


def contrast(a, b):
    la, lb = render._luminance(a), render._luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


# --------------------------------------------------------------------------- colours


def test_scale_ends_and_middle_are_the_rdbu_anchors():
    assert render._scale_color(1.0, render._LIGHT) == render._hex("#b2182b")
    assert render._scale_color(-1.0, render._LIGHT) == render._hex("#2166ac")
    assert render._scale_color(0.0, render._LIGHT) == render._hex("#f7f7f7")
    # clipped outside [-1, 1]
    assert render._scale_color(7.0, render._LIGHT) == render._scale_color(1.0, render._LIGHT)


def test_scale_is_monotone_in_red_and_blue():
    reds = [render._scale_color(v, render._LIGHT) for v in np.linspace(0, 1, 20)]
    # More relevance for the class = less green and blue (a deeper red).
    assert all(b[1] <= a[1] for a, b in zip(reds, reds[1:]))
    blues = [render._scale_color(-v, render._LIGHT) for v in np.linspace(0, 1, 20)]
    assert all(b[0] <= a[0] for a, b in zip(blues, blues[1:]))


@pytest.mark.parametrize("anchors", [render._LIGHT, render._DARK], ids=["light", "dark"])
def test_text_on_every_background_meets_wcag_aa(anchors):
    for v in np.linspace(-1, 1, 81):
        bg = render._scale_color(float(v), anchors)
        assert contrast(bg, render._text_color(bg)) >= 4.5, (v, bg)


def test_256_colour_fallback_keeps_contrast_and_hue():
    for v in np.linspace(-1, 1, 41):
        bg = render._scale_color(float(v), render._LIGHT)
        index, approx = render._xterm256(bg)
        assert 16 <= index <= 255
        assert sum(abs(x - y) for x, y in zip(bg, approx)) < 110  # nearest, not arbitrary
        fg = (0, 0, 0) if render._text_color(approx) == render._DARK_TEXT else (255, 255, 255)
        assert contrast(approx, fg) >= 4.5
    assert render._xterm256((255, 0, 0)) == (196, (255, 0, 0))
    assert render._xterm256((128, 128, 128))[0] in range(232, 256)


def test_scaled_relevance():
    np.testing.assert_allclose(render.scaled_relevance([1.0, -4.0, 2.0]), [0.25, -1.0, 0.5])
    np.testing.assert_array_equal(render.scaled_relevance([0.0, 0.0]), [0.0, 0.0])
    np.testing.assert_allclose(render.scaled_relevance([np.nan, 2.0, np.inf]), [0.0, 1.0, 0.0])


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


def test_plain_ansi_has_numbers_oov_marks_and_no_escapes():
    exp = make_exp(["a", "fine", "zorb", "film"], [0.1, 2.0, -0.5, 0.0], oov=[0, 0, 1, 0])
    out = render.to_ansi(exp, color="none")
    assert ESC not in out
    assert out.splitlines()[0] == "a(+0.10) fine(+2.00) zorb?(-0.50) film(+0.00)"
    assert "predicted pos" in out and "explained pos" in out and "lrp (signal-take-all, eps 0.001" in out
    assert "?: unknown word" in out


@pytest.mark.parametrize("relevance, shown", [
    ([1.5, -0.25], "a(+1.50) b(-0.25)"),
    ([0.0123, 0.0], "a(+0.0123) b(+0.0000)"),
    ([123.4, 1.0], "a(+123) b(+1)"),
    ([3e30, -1.0], "a(+3.00e+30) b(-1.00e+00)"),
    ([0.0, 0.0], "a(+0.00) b(+0.00)"),
])
def test_numbers_share_one_format_per_sentence(relevance, shown):
    exp = make_exp(["a", "b"], relevance)
    assert render.ansi_tokens(exp, color="none") == shown


def test_truecolor_ansi_paints_the_extremes_with_the_scale_ends():
    exp = make_exp(["good", "bad", "the"], [3.0, -3.0, 0.01])
    out = render.ansi_tokens(exp, color="truecolor", theme="light")
    assert "\x1b[48;2;178;24;43m\x1b[38;2;255;255;255mgood\x1b[0m" in out
    assert "\x1b[48;2;33;102;172m\x1b[38;2;255;255;255mbad\x1b[0m" in out
    assert out.endswith(" the")  # near zero: left uncoloured, readable on any background


def test_256_ansi_and_oov_underline_and_values():
    exp = make_exp(["good", "zorb"], [1.0, -0.25], oov=[0, 1])
    out = render.to_ansi(exp, color="256", values=True, theme="light")
    assert "\x1b[48;5;" in out and "\x1b[48;2;" not in out
    assert "\x1b[4m" in out and "underlined" in out
    assert "+1.00" in out and "-0.25" in out


def test_wrapping_between_words():
    exp = make_exp(["alpha", "beta", "gamma", "delta", "epsilon"], [1.0, -1.0, 0.5, 0.2, 0.0])
    visible = re.compile(r"\x1b\[[0-9;]*m")
    out = render.ansi_tokens(exp, color="truecolor", theme="light", width=12, indent=2)
    lines = [visible.sub("", line) for line in out.split("\n")]
    assert lines == ["alpha beta", "  gamma", "  delta", "  epsilon"]
    assert all(len(line) <= 12 for line in lines)
    assert "\n" not in render.ansi_tokens(exp, color="truecolor", theme="light")
    long = make_exp(["a" * 30], [1.0])  # a word longer than the line stays whole
    assert render.ansi_tokens(long, color="none", width=10) == "a" * 30 + "(+1.00)"


def test_summary_and_legend_wrap_at_their_separators():
    exp = make_exp(["a", "zorb"], [1.0, -1.0], oov=[0, 1])
    out = render.to_ansi(exp, color="256", theme="light", width=50)
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.split("\n")]
    assert plain[1].startswith("predicted pos") and plain[2].startswith("  explained pos")
    assert plain[3].startswith("  lrp (signal-take-all")
    assert plain[-1] == "underlined: unknown word" and all(len(line) <= 50 for line in plain)


def test_control_characters_in_tokens_do_not_reach_the_terminal():
    exp = make_exp(["evil\x1b[2J", "ok"], [1.0, -1.0])
    out = render.to_ansi(exp, color="none")
    assert "\x1b[2J" not in out and ESC not in out


def test_all_classes_block_marks_the_prediction():
    exps = [make_exp(["a", "b"], [1.0, -1.0], target=t) for t in (0, 1)]
    lines = render.ansi_all_classes(exps, color="none").splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("  neg ") and lines[2].startswith("* pos ")


def test_bad_color_and_theme_are_value_errors():
    exp = make_exp(["a"], [1.0])
    with pytest.raises(ValueError, match="color"):
        render.to_ansi(exp, color="rainbow")
    with pytest.raises(ValueError, match="theme"):
        render.to_ansi(exp, color="256", theme="sepia")


def test_prediction_bars():
    pred = render.Prediction("a b", ["a", "b"], np.zeros(2, bool), np.array([0.0, np.log(3.0)]),
                             ["neg", "pos"])
    assert pred.prediction == 1 and pred.prediction_name == "pos"
    np.testing.assert_allclose(pred.probabilities, [0.25, 0.75])
    out = render.prediction_to_ansi(pred, color="none")
    lines = out.splitlines()
    assert lines[0] == "predicted pos (score 1.1, p 0.75)"
    assert lines[2].count("█") == 18 and lines[1].count("█") == 6  # 0.75 and 0.25 of 24 cells


# --------------------------------------------------------------------------- HTML


EVIL = ["<script>alert(1)</script>", '" onmouseover="x', "&amp;", "'single'"]


def test_html_escapes_every_token_text_class_name_and_title():
    exp = make_exp(EVIL, [1.0, -1.0, 0.5, 0.0], text=" ".join(EVIL), target=0,
                   class_names=["<b>neg</b>", '"pos"'])
    page = render.to_html([exp], title='<img src=x onerror="alert(2)">')
    assert "<script>" not in page and "</script>" not in page
    assert '" onmouseover="x' not in page and "onerror=\"" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot; onmouseover=&quot;x" in page
    assert "&amp;amp;" in page and "&#x27;single&#x27;" in page
    assert "&lt;b&gt;neg&lt;/b&gt;" in page and "&quot;pos&quot;" in page
    # every tag in the page is one of ours
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "div",
                    "span", "section", "p", "b", "footer"}


def test_html_page_is_self_contained_with_legend_tooltips_and_dark_mode():
    exp = make_exp(["good", "zorb", "the"], [2.0, -1.0, 0.0], oov=[0, 1, 0])
    page = render.to_html([exp])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert "prefers-color-scheme:dark" in page and 'class="tlrp-legend"' in page
    assert 'title="relevance +2.00"' in page
    assert 'title="relevance -1.00 · not in the vocabulary"' in page
    assert 'class="tlrp-tok tlrp-oov"' in page
    assert "background:#b2182b;color:#ffffff" in page  # the strongest word, light scheme
    assert "predicted <b>pos</b>" in page and "explained <b>pos</b>" in page


def assert_balanced(page):
    """Every element we open is closed, in order (void elements aside)."""
    from html.parser import HTMLParser

    stack = []

    class Checker(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "br", "img", "link"):
                stack.append(tag)

        def handle_endtag(self, tag):
            assert stack and stack[-1] == tag, (stack, tag)
            stack.pop()

    Checker().feed(page)
    assert stack == []


def test_html_is_well_formed():
    exps = [make_exp(EVIL, [1.0, -1.0, 0.5, 0.0], oov=[1, 0, 0, 1]), make_exp(["a"], [0.0])]
    assert_balanced(render.to_html(exps))
    assert_balanced(render.to_html(exps, fragment=True))
    pred = render.Prediction("x", ["x"], np.zeros(1, bool), np.array([0.0, 1.0]), CLASSES)
    assert_balanced(render.html_header() + render.html_error(1, "<x>", "e") + render.html_prediction(pred)
                    + render.html_footer(count=2, errors=1))


def test_html_fragment_and_streaming_pieces_agree_with_to_html():
    exps = [make_exp(["a", "b"], [1.0, -1.0]), make_exp(["c"], [0.5], target=0)]
    page = render.to_html(exps, title="T")
    streamed = (render.html_header("T") + render.html_item(exps[0]) + render.html_item(exps[1])
                + render.html_footer())
    assert page == streamed
    frag = render.to_html(exps, fragment=True)
    assert frag.startswith('<div class="tlrp">') and "<html" not in frag and "<body" not in frag
    assert frag.count('class="tlrp-item"') == 2
    assert "(p " in render.html_item(exps[1])  # the target's probability when it is not the prediction


def test_explanation_repr_html_is_escaped():
    exp = make_exp(EVIL[:2], [1.0, -1.0])
    out = exp._repr_html_()
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_html_error_and_prediction_items_escape():
    err = render.html_error(3, "<script>x</script>", 'bad "thing" <here>')
    assert "<script>" not in err and "&lt;here&gt;" in err and "#3" in err
    pred = render.Prediction("<b>x</b>", ["x"], np.zeros(1, bool), np.array([0.0, 1.0]), ["<i>n</i>", "p"])
    item = render.html_prediction(pred, index=2)
    assert "<b>x</b>" not in item and "&lt;i&gt;n&lt;/i&gt;" in item


def test_html_footer_counts():
    assert "3 sentences, 1 line with errors" in render.html_footer(count=3, errors=1)
    assert "1 sentence ·" in render.html_footer(count=1)


# --------------------------------------------------------------------------- JSON / TSV

SCHEMA = {"text": (str, type(None)), "tokens": list, "relevance": list, "scores": list,
          "probabilities": list, "class_names": list, "prediction": int, "prediction_name": str,
          "target": int, "target_name": str, "method": str, "oov": list,
          "rest": (float, type(None)), "params": dict}


def check_schema(record):
    for key, types in SCHEMA.items():
        assert key in record, key
        assert isinstance(record[key], types), (key, record[key])
    n = len(record["tokens"])
    assert len(record["relevance"]) == n and len(record["oov"]) == n
    assert len(record["scores"]) == len(record["class_names"]) == len(record["probabilities"])
    assert all(isinstance(t, str) for t in record["tokens"] + record["class_names"])
    assert all(isinstance(b, bool) for b in record["oov"])
    assert record["prediction_name"] == record["class_names"][record["prediction"]]
    assert record["target_name"] == record["class_names"][record["target"]]
    assert abs(sum(record["probabilities"]) - 1.0) < 1e-9


def test_json_is_one_line_following_the_schema():
    exp = make_exp(["a", "b\nc"], [np.float32(0.5), -0.25], oov=[1, 0], text='x "y"\n')
    line = render.to_json(exp, line=7)
    assert "\n" not in line
    record = json.loads(line)
    check_schema(record)
    assert record["line"] == 7
    assert record["relevance"] == [0.5, -0.25] and record["oov"] == [True, False]
    assert record["params"] == {"rule": "signal-take-all", "eps": 0.001, "bias_factor": 0.0}
    assert "line" not in json.loads(render.to_json(exp))


def test_json_non_finite_numbers_become_null():
    exp = make_exp(["a", "b"], [np.nan, np.inf], rest=float("nan"))
    record = json.loads(render.to_json(exp))
    assert record["relevance"] == [None, None] and record["rest"] is None


def test_json_numpy_params_are_plain():
    exp = make_exp(["a"], [1.0], params={"seed": np.int64(3), "eps": np.float32(0.5), "x": np.arange(2)})
    assert json.loads(render.to_json(exp))["params"] == {"seed": 3, "eps": 0.5, "x": [0, 1]}


def test_error_record():
    assert json.loads(render.error_record(4, "", "empty line")) == {"line": 4, "text": "", "error": "empty line"}


def test_tsv_rows_and_escaping():
    exp = make_exp(["a\tb", "c"], [0.5, -1.0], oov=[0, 1])
    out = render.to_tsv(exp, line=2, header=True).splitlines()
    assert out[0] == "line\ttarget\tposition\ttoken\trelevance\toov"
    assert out[1] == "2\tpos\t0\ta\\tb\t0.5\t0"
    assert out[2] == "2\tpos\t1\tc\t-1.0\t1"
    assert render.to_tsv(exp).splitlines()[0].split("\t")[0] == "pos"


def test_prediction_tsv_and_record():
    pred = render.Prediction("a\tb", ["a", "b"], np.array([False, True]), np.array([0.0, 0.0]), ["n", "p"])
    assert render.prediction_tsv_header(["n", "p"], line=True) == "line\ttext\tprediction\tp_n\tp_p"
    assert render.prediction_to_tsv(pred, line=1) == "1\ta\\tb\tn\t0.5\t0.5"
    rec = render.prediction_record(pred, line=1)
    assert rec["probabilities"] == [0.5, 0.5] and rec["oov"] == [False, True] and rec["prediction"] == 0
