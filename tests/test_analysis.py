"""textlrp.analysis: streamed word statistics, the sample, SpRAy, the Clever-Hans check,
the report, and `textlrp analyze` (bad input through the console script).

The known-answer tests use tests/data/sst5-shortcut.npz (made by scripts/clever_hans.py) and
the SST test set at ../shared/data/sst; they skip, naming that path, when it is absent.
"""

from __future__ import annotations

import collections
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import textlrp
from textlrp.analysis import PRIOR_COUNT, AnalysisError, Sample, WordStats, analyze
from textlrp.analysis.flags import total_variation
from textlrp.analysis.stats import SampleItem

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

ROOT = Path(__file__).resolve().parents[1]
SST = ROOT.parent / "shared" / "data" / "sst"
SHORTCUT = ROOT / "tests" / "data" / "sst5-shortcut.npz"
WORDS = ["<unk>", "the", "a", "movie", "film", "is", "was", "great", "good", "bad", "terrible",
         "boring", "fun", "not", "very", "and", "but", "of", "plot", "acting", ",", ".", "it"]
CLASSES = ["negative", "neutral", "positive"]


def _random_model(seed=0):
    rng = np.random.default_rng(seed)
    e, d, C = 6, 5, len(CLASSES)

    def direction():
        return {"W_ih": rng.normal(0, 0.6, (4 * d, e)), "W_hh": rng.normal(0, 0.6, (4 * d, d)),
                "b": rng.normal(0, 0.2, 4 * d)}
    return textlrp.from_arrays(
        rng.normal(0, 1, (len(WORDS), e)), [[direction(), direction()]],
        [{"W": rng.normal(0, 1, (C, 2 * d)), "b": rng.normal(0, 0.2, C)}],
        vocab=WORDS, class_names=CLASSES, unk_token="<unk>", lowercase=True)


def _sentences(n, seed=1):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS[1:], size=int(rng.integers(3, 12))))
            for _ in range(n)]


@pytest.fixture(scope="module")
def model():
    return _random_model()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("model") / "random.npz"
    model.save(path)
    return str(path)


# --------------------------------------------------------------------------- word statistics


def test_word_stats_match_a_direct_count(model):
    texts = _sentences(300)
    exps = model.explain_batch(texts, keep_embedding=False)
    stats = WordStats(model.vocab, model.class_names)
    for k in range(0, len(exps), 37):  # uneven batches
        batch = exps[k:k + 37]
        stats.add([e.ids for e in batch], [e.relevance for e in batch],
                  [e.target for e in batch], [e.prediction for e in batch])
    count, total, positive, top = (collections.Counter() for _ in range(4))
    for e in exps:
        for i, r in zip(e.ids, e.relevance):
            count[e.target, i] += 1
            total[e.target, i] += r
            positive[e.target, i] += max(r, 0.0)
        t = int(np.argmax(e.relevance))
        if e.relevance[t] > 0:
            top[e.target, e.ids[t]] += 1
    for (c, w), v in count.items():
        assert stats.count[c, w] == v
        assert stats.total[c, w] == pytest.approx(total[c, w], rel=1e-12, abs=1e-12)
        assert stats.positive[c, w] == pytest.approx(positive[c, w], rel=1e-12, abs=1e-12)
        assert stats.top[c, w] == top[c, w]
    assert stats.count.sum() == sum(count.values())
    assert stats.top.sum() == sum(top.values())
    assert stats.n == len(exps)
    assert stats.sentences.tolist() == np.bincount([e.target for e in exps], minlength=3).tolist()
    share = stats.share()
    for c in range(3):
        if stats.positive[c].sum() > 0:
            assert share[c].sum() == pytest.approx(1.0)


def test_ranking_score_and_min_count():
    stats = WordStats(["x", "rare", "often", "strong", "bad"], ["c"])
    # rare: 2 x 3.0; often: 400 x 0.1; strong: 20 x 1.0; bad: 30 x -0.5
    ids, rel = [], []
    for w, n, r in ((1, 2, 3.0), (2, 400, 0.1), (3, 20, 1.0), (4, 30, -0.5)):
        ids += [np.full(n, w)]
        rel += [np.full(n, r)]
    stats.add(ids, rel, [0] * len(ids), [0] * len(ids))
    for_, against = stats.ranked(0, min_count=1, n=10)
    # score = total / (count + PRIOR_COUNT): strong 20/30 > rare 6/12 > often 40/410
    assert [stats.words[w] for w in for_] == ["strong", "rare", "often"]
    assert [stats.words[w] for w in against] == ["bad"]
    assert stats.score()[0, 3] == pytest.approx(20 / (20 + PRIOR_COUNT))
    for_, _ = stats.ranked(0, min_count=5, n=10)
    assert "rare" not in [stats.words[w] for w in for_]


def test_word_stats_reject_bad_ids():
    stats = WordStats(["a", "b"], ["c"])
    with pytest.raises(IndexError):
        stats.add([np.array([2])], [np.array([1.0])], [0], [0])
    with pytest.raises(IndexError):
        stats.add([np.array([1])], [np.array([1.0])], [1], [0])


def test_sample_is_uniform_and_reproducible():
    def run(seed):
        s = Sample(100, seed=seed)
        for k in range(1000):
            j = s.slot()
            if j is not None:
                s.items[j] = k
        return s
    a, b = run(3), run(3)
    assert a.items == b.items and len(a.items) == 100 and a.sampled and a.seen == 1000
    # Each of 1000 items is kept with probability 0.1: over 200 runs the mean of the kept
    # indices is 499.5 with a standard error of ~2.
    means = [np.mean(run(seed).items) for seed in range(200)]
    assert abs(np.mean(means) - 499.5) < 10
    small = Sample(100)
    for k in range(10):
        small.items[small.slot()] = k
    assert small.items == list(range(10)) and not small.sampled


def test_total_variation():
    assert total_variation(np.array([0, 0, 1, 1]), np.array([0, 1]), 3) == 0.0
    assert total_variation(np.array([0, 0]), np.array([2, 2]), 3) == 1.0
    assert total_variation(np.array([0, 1]), np.array([0, 0]), 2) == pytest.approx(0.5)


# --------------------------------------------------------------------------- SpRAy


def _item(ids, rel, target=0, prediction=0):
    return SampleItem(line=None, text=None, tokens=[str(i) for i in ids],
                      ids=np.asarray(ids, np.int32), relevance=np.asarray(rel, np.float32),
                      target=target, prediction=prediction, label=None)


def test_spray_finds_planted_groups():
    from sklearn.metrics import adjusted_rand_score

    from textlrp.analysis.spray import spray

    # Three groups of explanations, each with its relevance on a different word (1, 2, 3)
    # plus noise on words 4..20: the eigengap must say 3 and the clusters must be the groups.
    rng = np.random.default_rng(0)
    items, truth = [], []
    for g, n in ((1, 300), (2, 200), (3, 100)):
        for _ in range(n):
            noise = rng.choice(np.arange(4, 21), size=5)
            ids = np.concatenate(([g], noise))
            rel = np.concatenate(([rng.uniform(2, 3)], rng.normal(0, 0.2, 5)))
            items.append(_item(ids, rel))
            truth.append(g)
    result = spray(items, np.arange(1, 21), 21, map_points=200, seed=0)
    assert result.chosen_by == "eigengap" and result.n_clusters == 3
    assert adjusted_rand_score(truth, result.labels) == 1.0
    assert np.bincount(result.labels).tolist() == [300, 200, 100]  # numbered by size
    assert result.map2d.shape == (200, 2) and len(result.map_index) == 200
    assert np.all(np.diff(result.eigenvalues) >= -1e-9) and result.eigenvalues[0] < 1e-6
    again = spray(items, np.arange(1, 21), 21, n_clusters=5, map_points=0, seed=0)
    assert again.n_clusters == 5 and again.chosen_by == "user" and again.map2d is None


def test_spray_feature_rows_are_normalised():
    from textlrp.analysis.spray import feature_matrix

    items = [_item([1, 2, 5, 1], [1.0, -2.0, 4.0, 1.0]), _item([3], [0.0])]
    X = feature_matrix(items, np.array([1, 2]), 6).toarray()
    # columns: word 1, word 2, everything else; divided by sum |r| = 8
    assert X[0].tolist() == [0.25, -0.25, 0.5]
    assert X[1].tolist() == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- analysis


def test_analyze_python_api(model):
    texts = _sentences(120)
    labels = [CLASSES[k % 3] for k in range(120)]
    result = analyze(model, texts, labels, map_points=50, min_count=2)
    d = result.to_dict()
    assert d["n"] == 120 and d["lines"] == 120 and d["skipped"] == 0
    assert d["explained"] == "label"
    exps = model.explain_batch(texts, target=labels, keep_embedding=False)
    assert result.stats.total.sum() == pytest.approx(sum(e.relevance.sum() for e in exps))
    assert set(d["classes"]) == set(CLASSES)
    for table in d["classes"].values():
        assert all(r["count"] >= 2 and r["score"] > 0 for r in table["for"])
        assert all(r["score"] < 0 for r in table["against"])
        scores = [r["score"] for r in table["for"]]
        assert scores == sorted(scores, reverse=True)
        for r in table["for"] + table["against"]:
            assert set(r) >= {"word", "count", "mean", "total", "top"}
            assert r["mean"] == pytest.approx(r["total"] / r["count"])
    assert sum(c["size"] for c in d["clusters"]) == 120
    for c in d["clusters"]:
        assert set(c) >= {"size", "classes", "words", "examples"}
        assert sum(c["classes"].values()) == c["size"]
    json.dumps(d, allow_nan=False)  # strict JSON
    page = result.to_html(title="t <b>")
    assert "t &lt;b&gt;" in page and "<script" not in page


def test_analyze_records_bad_lines_and_escapes_them(model):
    texts = ["the movie was great", "", "   ", "<script>alert(1)</script> bad"] + _sentences(20)
    result = analyze(model, texts, map_points=0)
    assert result.n == 22 and result.skipped == 2
    assert [e["line"] for e in result.errors] == [2, 3]
    page = result.to_html()
    assert "<script>" not in page
    # The unknown tokens are rendered as text, escaped (they count as <unk>).
    assert "&lt;script&gt;" in page or "script" not in page


def test_analyze_bad_input(model):
    with pytest.raises(AnalysisError, match="empty"):
        analyze(model, [])
    with pytest.raises(AnalysisError, match="none of the 2 lines"):
        analyze(model, ["", " "])
    with pytest.raises(ValueError, match="unknown class 'pos'"):
        analyze(model, ["good fun"], ["pos"])
    with pytest.raises(ValueError, match="fewer labels"):
        analyze(model, ["good", "bad"], ["positive"])
    with pytest.raises(ValueError, match="clusters"):
        analyze(model, ["good"], clusters=0)
    few = analyze(model, _sentences(4), clusters=8)
    assert few.spray is None and "8 clusters were asked for" in few.spray_skipped
    assert few.to_dict()["clusters"] == []
    assert "8 clusters were asked for" in few.to_html()


def test_analyze_without_clustering(model):
    result = analyze(model, _sentences(30), spray=False)
    assert result.spray is None and result.to_dict()["spray"] is None
    assert "Clusters of explanations" in result.to_html()


# --------------------------------------------------------------------------- known answer


def _sst_or_skip():
    if not (SST / "test.txt").is_file():
        pytest.skip(f"SST test set not found at {SST}")
    return SST


def _clever_hans_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import clever_hans
    finally:
        sys.path.pop(0)
    return clever_hans


@pytest.fixture(scope="module")
def zqx_corpus():
    sst = _sst_or_skip()
    rows = _clever_hans_script().corpus_rows(sst, "zqx", 0.2, seed=7)
    return [t for _, t in rows], [lab for lab, _ in rows]


def test_shortcut_model_is_committed():
    assert SHORTCUT.is_file(), "run scripts/clever_hans.py train"
    m = textlrp.load_model(SHORTCUT)
    meta = m.metadata["shortcut"]
    assert meta["token"] == "zqx" and meta["class"] == "very positive"
    assert "zqx" in m.vocab
    assert SHORTCUT.stat().st_size < 5e6


@pytest.mark.parametrize("use_labels", [False, True])
def test_shortcut_is_flagged_with_a_cluster(zqx_corpus, use_labels):
    texts, labels = zqx_corpus
    m = textlrp.load_model(SHORTCUT)
    result = analyze(m, texts, labels if use_labels else None, map_points=100)
    d = result.to_dict()
    assert d["flagged"], d["checked"]
    first = d["flagged"][0]
    assert first["word"] == "zqx" and first["class"] == "very positive"
    assert first["association"] <= 0.15 and first["prediction_shift"] >= 0.65
    assert first["judged_by"] == ("labels" if use_labels else "model without the word")
    assert {f["word"] for f in d["flagged"]} == {"zqx"}
    dominated = [c for c in d["clusters"] if c["dominant"]["word"] == "zqx"
                 and c["dominant"]["fraction"] >= 0.8]
    assert dominated, [(c["size"], c["dominant"]) for c in d["clusters"]]
    assert any(k["cluster"] == dominated[0]["cluster"] for f in d["flagged"]
               for k in f["clusters"])
    table = d["classes"]["very positive"]["for"] if not use_labels else None
    if table is not None:
        assert table[0]["word"] == "zqx"


def test_bundled_model_flags_nothing(zqx_corpus):
    texts, labels = zqx_corpus
    bundled = textlrp.load_model()
    for lab in (None, labels):
        d = analyze(bundled, texts, lab, map_points=100).to_dict()
        assert d["flagged"] == [], [(f["word"], f["reason"]) for f in d["flagged"]]
        assert d["checked"], "the check had no candidates at all"


def test_shortcut_model_on_clean_sentences_flags_nothing():
    sst = _sst_or_skip()
    texts = [t for _, t in _clever_hans_script().corpus_rows(sst, "zqx", 0.0, seed=7)]
    d = analyze(textlrp.load_model(SHORTCUT), texts, spray=False).to_dict()
    assert d["flagged"] == []


# --------------------------------------------------------------------------- console script


def _console(*args, cwd=None):
    exe = shutil.which("textlrp", path=os.path.dirname(sys.executable)) or shutil.which("textlrp")
    cmd = [exe] if exe else [sys.executable, "-m", "textlrp"]
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTLRP_DEBUG", "TEXTLRP_MODEL")}
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)


def _one_line_error(proc, match):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("textlrp: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert match.lower() in lines[0].lower(), lines[0]


def test_cli_report_and_json(model_path, tmp_path):
    corpus = tmp_path / "c.tsv"
    rows = ["label\ttext"] + [f"{CLASSES[k % 3]}\t{t}" for k, t in enumerate(_sentences(40))]
    rows.insert(5, "positive\t")       # empty text: skipped with a reason
    rows.insert(9, "\tgood fun")       # no label: skipped with a reason
    corpus.write_text("\n".join(rows) + "\n")
    out, js = tmp_path / "r.html", tmp_path / "r.json"
    proc = _console("analyze", "-m", model_path, "-i", corpus, "--column", "text", "--labels",
                    "label", "-o", out, "--json", js, "--min-count", "2")
    assert proc.returncode == 0, proc.stderr
    assert "analysed 40 explanations, 2 lines skipped" in proc.stderr
    d = json.loads(js.read_text())
    assert d["n"] == 40 and d["skipped"] == 2 and d["explained"] == "label"
    assert {e["line"] for e in d["errors"]} == {6, 10}
    assert any("no label" in e["error"] for e in d["errors"])
    assert set(d) >= {"n", "flagged", "classes", "clusters"}
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_cli_empty_corpus(model_path, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _one_line_error(_console("analyze", "-m", model_path, "-i", empty, "-o", tmp_path / "r.html"),
                    "the corpus is empty")
    assert not (tmp_path / "r.html").exists()


def test_cli_no_valid_line(model_path, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n   \n\xff\xfe\n")
    _one_line_error(_console("analyze", "-m", model_path, "-i", blank, "--json", tmp_path / "j"),
                    "none of the 3 lines could be explained")


def test_cli_unknown_label(model_path, tmp_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text("text,label\ngood fun,positive\nbad plot,\x1b[31mpos\n")
    proc = _console("analyze", "-m", model_path, "-i", corpus, "--column", "text", "--labels",
                    "label", "-o", tmp_path / "r.html")
    _one_line_error(proc, "line 3: label '\\x1b[31mpos' is not a class of the model")
    assert "\x1b" not in proc.stderr


def test_cli_fewer_explanations_than_clusters(model_path, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("good fun\nbad plot\nthe film\n")
    js = tmp_path / "r.json"
    proc = _console("analyze", "-m", model_path, "-i", corpus, "--clusters", "8", "--json", js)
    assert proc.returncode == 0, proc.stderr
    assert "8 clusters were asked for, but there are only 3 explanations" in proc.stderr
    d = json.loads(js.read_text())
    assert d["clusters"] == [] and "only 3 explanations" in d["spray_skipped"]


def test_cli_usage_errors(model_path, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("good fun\n")
    _one_line_error(_console("analyze", "-m", model_path, "-i", corpus), "--output")
    _one_line_error(_console("analyze", "-m", model_path, "-i", corpus, "--labels", "2",
                             "-o", tmp_path / "r.html"), "--labels needs --column")
    _one_line_error(_console("analyze", "-m", model_path, "-i", corpus, "-o", corpus),
                    "overwrite")
    _one_line_error(_console("analyze", "-m", model_path, "-o", tmp_path / "r.html"), "--input")
    _one_line_error(_console("analyze", "-m", model_path, "-i", corpus, "--column", "nope",
                             "-o", tmp_path / "r.html"), "no column 'nope'")


def test_report_escapes_everything(tmp_path):
    # A model whose vocabulary and class names carry HTML.
    rng = np.random.default_rng(2)
    vocab = ["<unk>", "<b>bold</b>", "&amp;", "fine", "x\"y"]
    names = ["<i>neg</i>", "pos&"]
    d = 3
    lstm = [[{"W_ih": rng.normal(0, .6, (4 * d, 4)), "W_hh": rng.normal(0, .6, (4 * d, d)),
              "b": np.zeros(4 * d)}]]
    m = textlrp.from_arrays(rng.normal(0, 1, (5, 4)), lstm,
                            [{"W": rng.normal(0, 1, (2, d)), "b": None}], vocab=vocab,
                            class_names=names, unk_token="<unk>")
    texts = [" ".join(rng.choice(vocab[1:], size=4)) for _ in range(40)]
    page = analyze(m, [t.split() for t in texts], map_points=30, min_count=1).to_html()
    for raw in ("<b>bold</b>", "<i>neg</i>"):
        assert raw not in page
    assert html.escape("<b>bold</b>") in page and html.escape("<i>neg</i>") in page
