"""Word-deletion protocol (textlrp.experiments) on hand-made models, numbers worked out by hand.

The toy model: e = 1, d = 1, one forward LSTM direction whose i, f, o gates are saturated open
(bias 30: sigmoid(30) = 1 - 9e-14) and whose cell input is g_t = tanh(x_t + b_g) (no recurrent
weights). Hence c_T = sum_t g_t, h_T = tanh(c_T), and the head [[-1], [1]] gives
score(neg) = -tanh(c_T), score(pos) = tanh(c_T): the prediction is pos iff sum_t g_t > 0.

With b_g = 0, LRP (signal-take-all) telescopes along the cell chain, R(w_t) = g_t * s/c_T, and
s/c_T = tanh(c_T)/c_T > 0 for pos, < 0 for neg: relevance for pos is proportional to
tanh(x_t), relevance for neg to -tanh(x_t).

Embeddings and g = tanh(x):  great 2 -> .9640,  good 1 -> .7616,  fine .5 -> .4621,
the .1 -> .0997,  bad -1 -> -.7616,  awful -2 -> -.9640.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SST_DIR, requires_sst

import textlrp
from textlrp.cli import UsageError
from textlrp.experiments import DeletionConfig, deletion_order, load_labelled, word_deletion

VOCAB = ["<unk>", "great", "good", "fine", "the", "bad", "awful"]
EMB = [0.0, 2.0, 1.0, 0.5, 0.1, -1.0, -2.0]


def toy_model(vocab=VOCAB, emb=EMB, g_bias=0.0):
    lstm = [
        [
            {
                "W_ih": np.array([[0.0], [0.0], [1.0], [0.0]]),  # rows i, f, g, o
                "W_hh": np.zeros((4, 1)),
                "b": np.array([30.0, 30.0, g_bias, 30.0]),
            }
        ]
    ]
    head = [{"W": np.array([[-1.0], [1.0]]), "b": None}]
    return textlrp.from_arrays(
        np.array(emb, dtype=np.float64).reshape(-1, 1),
        lstm,
        head,
        vocab=list(vocab),
        class_names=["neg", "pos"],
        dtype=np.float64,
    )


# Four sentences of four tokens (two correct, two false) and one too short for min_length=4.
SENTENCES = [
    ["great", "bad", "fine", "the"],  # pos; c = .9640-.7616+.4621+.0997 = .7642 -> pos, correct
    ["awful", "bad", "fine", "the"],  # neg; c = -.9640-.7616+.4621+.0997 = -1.1638 -> neg, correct
    ["bad", "awful", "good", "the"],  # pos; c = -.7616-.9640+.7616+.0997 = -.8643 -> neg, false
    ["great", "good", "bad", "the"],  # neg; c = .9640+.7616-.7616+.0997 = 1.0637 -> pos, false
    ["good", "bad", "the"],  # 3 tokens < min_length 4: skipped
]
LABELS = ["pos", "neg", "pos", "neg", "pos"]


@pytest.fixture(scope="module")
def model():
    return toy_model()


def test_toy_model_predictions(model):
    scores = model.predict(SENTENCES[:4])
    c = np.array([0.7642, -1.1638, -0.8643, 1.0637])
    np.testing.assert_allclose(scores[:, 1], np.tanh(c), atol=2e-4)
    np.testing.assert_allclose(scores[:, 0], -np.tanh(c), atol=2e-4)


def test_lrp_and_gi_worked_by_hand(model):
    res = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp", "gi"), k=3, min_length=4),
    )
    assert (res.n_sentences, res.n_used, res.n_correct, res.n_false) == (5, 4, 2, 2)
    assert res.k == [0, 1, 2, 3]
    assert res.order == {"correct": "decreasing", "false": "increasing"}
    lrp = res.methods["lrp"]
    # Correct subset, decreasing relevance (LRP ~ tanh(x) for pos, -tanh(x) for neg):
    #  S0 (pos) deletes great, fine, the: c = -.1998 (neg), -.6619, -.7616 -> wrong from k=1
    #  S1 (neg) deletes awful, bad, the:  c = -.1998 (neg), .5618 (pos), .4621 -> wrong from k=2
    np.testing.assert_allclose(lrp.correct, [1.0, 0.5, 0.0, 0.0])
    # False subset, increasing relevance of the true class:
    #  S2 (true pos) deletes awful, bad, the: c = .0997 (pos), .8613, .7616 -> right from k=1
    #  S3 (true neg) deletes great, good, the: c = .0997 (pos), -.6619 (neg), -.7616
    #     -> right from k=2
    np.testing.assert_allclose(lrp.false, [0.0, 0.5, 1.0, 1.0])
    # area: mean over k=1..3 of (1 - acc_k) = (.5 + 1 + 1)/3; of (acc_k - 0) = (.5 + 1 + 1)/3
    assert lrp.area_correct == pytest.approx(2.5 / 3)
    assert lrp.area_false == pytest.approx(2.5 / 3)
    assert lrp.correct_std is None
    # GI = dS/dx * x ~ (1 - tanh(x)^2) x (sign as for LRP):
    #     great .1413, good .4200, fine .3932, the .0990
    #  S0 deletes fine, great, the: c = .3021 (pos, still right), -.6619, -.7616 -> [1, 1, 0, 0]
    #  S1 deletes bad, awful, the:  c = -.4022 (neg, still right), .5618, .4621 -> [1, 1, 0, 0]
    gi = res.methods["gi"]
    np.testing.assert_allclose(gi.correct, [1.0, 1.0, 0.0, 0.0])
    #  S2 deletes bad, awful, the:  c = -.1027 (still wrong), .8613, .7616  -> [0, 0, 1, 1]
    #  S3 deletes good, great, the: c = .3021 (still wrong), -.6619, -.7616 -> [0, 0, 1, 1]
    np.testing.assert_allclose(gi.false, [0.0, 0.0, 1.0, 1.0])
    assert gi.area_correct == pytest.approx(2 / 3) and gi.area_false == pytest.approx(2 / 3)


class Recorder:
    """Wraps a model: fixed relevances per sentence, and a log of every engine call (the
    protocol calls the engine directly, past predict/explain_batch, with inputs it checked
    once)."""

    def __init__(self, model, relevance):
        self.model = model
        self.relevance = {
            tuple(model.encode(s)[1].tolist()): np.array(r, float) for s, r in relevance.items()
        }
        self.forward_calls = []
        self.targets = []
        self._core = SimpleNamespace(forward=self._forward)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def _engine_pass(self, method, params, ids, offsets, mask, targets, threads, keep, scores):
        self.targets.extend(targets.tolist())
        rel = np.concatenate([self.relevance[tuple(ids[a:b].tolist())]
                              for a, b in zip(offsets[:-1], offsets[1:])])
        return None, targets, rel, None, None, None

    def _forward(self, ids, offsets, mask, threads):
        inputs = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
        deleted = [None if mask is None else np.flatnonzero(mask[a:b]).tolist()
                   for a, b in zip(offsets[:-1], offsets[1:])]
        self.forward_calls.append((inputs, deleted))
        return self.model._core.forward(ids, offsets, mask, threads)

    def deleted_for(self, sentence):
        """The sets of positions deleted from one sentence (zero mode) in the last engine
        call, smallest first: step k deletes one more word than step k-1, so this is the
        order of the steps; each set is sorted (the engine takes a mask)."""
        ids = self.model.encode(sentence)[1].tolist()
        inputs, deleted = self.forward_calls[-1]
        return sorted((d for x, d in zip(inputs, deleted) if x == ids), key=len)


CORRECT = "good the the fine the"  # pos, c = .7616+3*.0997+.4621 > 0: correct
FALSE = "good fine bad the"  # neg, c = .7616+.4621-.7616+.0997 = .5618 -> pos: false


def recorder(model):
    return Recorder(model, {CORRECT: [1, 3, 3, 0, 3], FALSE: [0, -2, 5, -2]})


def test_order_ties_by_position_and_one_predict_call_per_method(model):
    rec = recorder(model)
    res = word_deletion(
        rec, [CORRECT.split(), FALSE.split()], ["pos", "neg"],
        DeletionConfig(methods=("lrp",), k=4, min_length=4),
    )
    assert (res.n_correct, res.n_false) == (1, 1)
    # correct: decreasing, ties (3, 3, 3 at 1, 2, 4) in position order
    assert rec.deleted_for(CORRECT.split()) == [[1], [1, 2], [1, 2, 4], [0, 1, 2, 4]]
    # false: increasing, ties (-2, -2 at 1, 3) in position order
    assert rec.deleted_for(FALSE.split()) == [[1], [1, 3], [0, 1, 3], [0, 1, 2, 3]]
    assert len(rec.forward_calls) == 2  # the intact sentences, then all steps of lrp at once
    assert rec.targets == [1, 0]  # true classes

    np.testing.assert_array_equal(deletion_order([0.0, -0.0, 1.0], decreasing=True), [2, 0, 1])
    np.testing.assert_array_equal(deletion_order([2.0, 1.0, 1.0], decreasing=False), [1, 2, 0])
    # long arrays with many ties (numpy's unstable sorts only show beyond ~16 elements)
    r = np.random.default_rng(0).integers(-2, 3, size=200).astype(float)
    for decreasing in (True, False):
        want = sorted(range(200), key=lambda t: (-r[t] if decreasing else r[t], t))
        np.testing.assert_array_equal(deletion_order(r, decreasing), want)


def test_forced_orders_and_predicted_target(model):
    rec = recorder(model)
    res = word_deletion(
        rec, [CORRECT.split(), FALSE.split()], ["pos", "neg"],
        DeletionConfig(methods=("sa",), k=2, min_length=4, order="decreasing"),
    )
    assert res.order == {"correct": "decreasing", "false": "decreasing"}
    assert rec.deleted_for(FALSE.split()) == [[2], [0, 2]]
    rec = recorder(model)
    res = word_deletion(
        rec, [CORRECT.split(), FALSE.split()], ["pos", "neg"],
        DeletionConfig(methods=("sa",), k=2, min_length=4, order="increasing"),
    )
    assert rec.deleted_for(CORRECT.split()) == [[3], [0, 3]]
    # predicted target: the false sentence is explained for its predicted class (pos) and,
    # with order=auto, its words supporting that wrong prediction go first (decreasing).
    rec = recorder(model)
    res = word_deletion(
        rec, [CORRECT.split(), FALSE.split()], ["pos", "neg"],
        DeletionConfig(methods=("sa",), k=2, min_length=4, target="predicted"),
    )
    assert rec.targets == [1, 1]
    assert res.order == {"correct": "decreasing", "false": "decreasing"}
    assert rec.deleted_for(FALSE.split()) == [[2], [0, 2]]


def test_min_length_filter(model):
    res = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp",), k=2, min_length=3),
    )
    # "good bad the" (pos): c = .7616-.7616+.0997 > 0 -> pos, correct
    assert (res.n_used, res.n_correct, res.n_false) == (5, 3, 2)
    with pytest.raises(ValueError, match="min_length=5"):
        word_deletion(model, SENTENCES, LABELS, DeletionConfig(methods=("lrp",), k=2, min_length=5))


# Second toy for remove vs zero: g = tanh(x + .5), so a zeroed word still adds tanh(.5) = .4621
# to c while a removed word adds nothing.  dull -1.5 -> tanh(-1) = -.7616;  meh 0 -> .4621.
def test_remove_vs_zero_mode():
    toy = toy_model(vocab=["<unk>", "dull", "meh"], emb=[0.0, -1.5, 0.0], g_bias=0.5)
    sent = ["dull", "meh", "dull"]  # neg; c = -.7616+.4621-.7616 = -1.0611 -> neg, correct
    rec = Recorder(toy, {"dull meh dull": [0, 0, 1]})
    # delete position 2 first, then 0 (tie with 1 broken by position), then 1
    zero = word_deletion(
        rec, [sent], ["neg"],
        DeletionConfig(methods=("lrp",), k=3, min_length=1, mode="zero"),
    )
    #  k=1: c = -.7616+.4621+.4621 = .1626 -> pos, wrong
    #  k=2: c = 3*.4621 -> pos;  k=3: same
    np.testing.assert_allclose(zero.methods["lrp"].correct, [1, 0, 0, 0])
    remove = word_deletion(
        rec, [sent], ["neg"],
        DeletionConfig(methods=("lrp",), k=3, min_length=1, mode="remove"),
    )
    #  k=1: "dull meh": c = -.7616+.4621 = -.2995 -> neg, still right
    #  k=2: "meh": c = .4621 -> pos, wrong;  k=3: capped at T-1 = 2 removals, "meh" again
    np.testing.assert_allclose(remove.methods["lrp"].correct, [1, 1, 0, 0])
    inputs, deleted = rec.forward_calls[-1]  # the words are gone, nothing is masked
    assert deleted == [None, None] and sorted(inputs, key=len) == [[2], [1, 2]]  # k=3 = k=2
    assert (remove.n_steps, remove.n_forward) == (3, 2)
    assert (zero.n_short, remove.n_short) == (
        0,
        1,
    )  # T=3: zero mode can delete 3 words, remove only 2
    # No false sentence: its curves are NaN, and null in JSON.
    assert np.isnan(zero.methods["lrp"].false).all()
    assert json.loads(zero.to_json())["methods"]["lrp"]["false"] == [None] * 4


def test_k_larger_than_sentence(model):
    # "great bad" (pos): c = .2024 -> correct; LRP deletes great then bad.
    res = word_deletion(
        model, [["great", "bad"]], ["pos"],
        DeletionConfig(methods=("lrp",), k=4, min_length=1),
    )
    #  k=1: c = -.7616 -> neg; k>=2: every word zeroed, c = 0, scores tie -> first class (neg)
    np.testing.assert_allclose(res.methods["lrp"].correct, [1, 0, 0, 0, 0])
    assert res.n_short == 1
    res = word_deletion(
        model, [["great", "bad"]], ["pos"],
        DeletionConfig(methods=("lrp",), k=4, min_length=1, mode="remove"),
    )
    np.testing.assert_allclose(res.methods["lrp"].correct, [1, 0, 0, 0, 0])  # "bad" stays from k=1


def test_random_seeds_mean_and_std(model):
    sents, labels = SENTENCES[:4], LABELS[:4]
    single = [
        word_deletion(
            model, sents, labels,
            DeletionConfig(methods=("random",), k=3, min_length=4, random_seeds=(s,)),
        )
        for s in (0, 1, 2)
    ]
    both = word_deletion(
        model, sents, labels,
        DeletionConfig(methods=("random",), k=3, min_length=4, random_seeds=(0, 1, 2)),
    )
    r = both.methods["random"]
    curves = np.array([s.methods["random"].correct for s in single])
    np.testing.assert_allclose(r.correct, curves.mean(axis=0))
    np.testing.assert_allclose(r.correct_std, curves.std(axis=0, ddof=1))
    areas = np.array([s.methods["random"].area_false for s in single])
    assert r.area_false == pytest.approx(areas.mean())
    assert r.area_false_std == pytest.approx(areas.std(ddof=1))
    assert r.seeds == [0, 1, 2]
    assert single[0].methods["random"].correct_std is not None  # one seed: std 0, still reported
    np.testing.assert_array_equal(single[0].methods["random"].correct_std, 0)


def test_rules_are_reported_as_lrp_variants(model):
    res = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp",), rules=("prop", "abs", "signal-take-all"), k=2,
                       min_length=4),
    )
    assert list(res.methods) == ["lrp", "lrp-prop", "lrp-abs"]
    assert res.params["rules"] == {"lrp": "signal-take-all", "lrp-prop": "prop", "lrp-abs": "abs"}
    direct = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp-half",), k=2, min_length=4),
    )
    assert list(direct.methods) == ["lrp-half"]


def test_json_and_csv(model, tmp_path):
    res = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp", "random"), k=3, min_length=4, random_seeds=(0, 1)),
    )
    d = json.loads(res.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == d
    assert d["k"] == [0, 1, 2, 3] and d["n_correct"] == 2 and d["n_false"] == 2 and d["n_used"] == 4
    assert d["methods"]["lrp"]["correct"] == [1.0, 0.5, 0.0, 0.0]
    assert d["methods"]["lrp"]["false"] == [0.0, 0.5, 1.0, 1.0]
    assert d["methods"]["lrp"]["area"]["correct"] == pytest.approx(2.5 / 3)
    assert "correct_std" not in d["methods"]["lrp"]
    assert len(d["methods"]["random"]["correct_std"]) == 4 and d["methods"]["random"]["seeds"] == [
        0,
        1,
    ]
    assert d["params"]["mode"] == "zero" and d["order"]["false"] == "increasing"

    rows = list(csv.DictReader(io.StringIO(res.to_csv(tmp_path / "r.csv"))))
    assert (tmp_path / "r.csv").read_text() == res.to_csv()
    assert len(rows) == 2 * 2 * 4
    lrp_false = [
        float(r["accuracy"]) for r in rows if r["method"] == "lrp" and r["subset"] == "false"
    ]
    assert lrp_false == [0.0, 0.5, 1.0, 1.0]
    assert all(r["std"] == "" for r in rows if r["method"] == "lrp")
    assert all(r["std"] != "" and r["n"] == "2" for r in rows if r["method"] == "random")

    table = res.table()
    assert "initially correct (n=2)" in table and "initially false (n=2)" in table
    lrp_line = next(line for line in table.splitlines() if line.startswith("lrp"))
    assert lrp_line.split() == ["lrp", "100.0", "50.0", "0.0", "0.0", "83.3"]
    assert "±" in next(line for line in table.splitlines() if line.startswith("random"))


def test_plot(model, tmp_path, monkeypatch):
    res = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp", "random"), k=3, min_length=4, random_seeds=(0, 1)),
    )
    pytest.importorskip("matplotlib")
    out = res.plot(tmp_path / "d.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were missing
    with pytest.raises(ImportError, match=r"textlrp\[plot\]"):
        res.plot(tmp_path / "e.png")


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        word_deletion(model, SENTENCES, LABELS, DeletionConfig(methods=("lime",)))
    with pytest.raises(ValueError, match="unknown rule"):
        word_deletion(model, SENTENCES, LABELS, DeletionConfig(rules=("z+",)))
    with pytest.raises(ValueError, match="5 sentences but 4 labels"):
        word_deletion(model, SENTENCES, LABELS[:4])
    with pytest.raises(ValueError, match="k must be"):
        word_deletion(model, SENTENCES, LABELS, DeletionConfig(k=0))
    with pytest.raises(ValueError, match="mode"):
        word_deletion(model, SENTENCES, LABELS, DeletionConfig(mode="mask"))
    with pytest.raises(ValueError, match="neutral"):
        word_deletion(model, SENTENCES, LABELS[:4] + ["neutral"], DeletionConfig(min_length=4))
    with pytest.raises(ValueError):
        word_deletion(model, SENTENCES, LABELS[:4] + [7], DeletionConfig(min_length=4))


def test_label_forms(model):
    by_name = word_deletion(
        model, SENTENCES, LABELS,
        DeletionConfig(methods=("lrp",), k=2, min_length=4),
    )
    by_index = word_deletion(
        model, SENTENCES, [["neg", "pos"].index(x) for x in LABELS],
        DeletionConfig(methods=("lrp",), k=2, min_length=4),
    )
    by_digit = word_deletion(
        model, SENTENCES, [str(["neg", "pos"].index(x)) for x in LABELS],
        DeletionConfig(methods=("lrp",), k=2, min_length=4),
    )
    for r in (by_index, by_digit):
        np.testing.assert_array_equal(r.methods["lrp"].correct, by_name.methods["lrp"].correct)
        np.testing.assert_array_equal(r.methods["lrp"].false, by_name.methods["lrp"].false)


def write_tsv(path):
    lines = [f"{lab}\t{' '.join(s)}" for s, lab in zip(SENTENCES, LABELS)]
    lines[1] = "0\t" + " ".join(SENTENCES[1])  # an index instead of a name
    path.write_text("# label<TAB>text\n" + "\n".join(lines) + "\n", encoding="utf-8")


def test_load_labelled_formats(tmp_path):
    tsv = tmp_path / "d.tsv"
    write_tsv(tsv)
    sents, labels = load_labelled(tsv, class_names=["neg", "pos"])
    assert sents == SENTENCES and labels == [1, 0, 1, 0, 1]
    ptb = tmp_path / "t.txt"
    ptb.write_text(
        "(3 (4 great) (1 bad))\n\n(1 (2 the) (1 (1 awful) (2 film)))\n", encoding="utf-8"
    )
    sents, labels = load_labelled(ptb)
    assert sents == [["great", "bad"], ["the", "awful", "film"]] and labels == [3, 1]
    assert load_labelled(ptb, format="sst") == (sents, labels)
    plain = tmp_path / "p.txt"
    plain.write_text("just text\n")
    with pytest.raises(ValueError, match="--format"):
        load_labelled(plain)
    with pytest.raises(FileNotFoundError):
        load_labelled(tmp_path / "missing.txt")


def run_cli(argv):
    """The deletion command as main() runs it (its one-line errors raise UsageError here)."""
    from textlrp.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_cli_on_tsv(model, tmp_path, capsys):
    model_path = tmp_path / "toy.npz"
    model.save(model_path)
    tsv = tmp_path / "d.tsv"
    write_tsv(tsv)
    argv = [
        "deletion",
        "--data",
        str(tsv),
        "--model",
        str(model_path),
        "--methods",
        "lrp,gi,random",
        "-k",
        "3",
        "--min-length",
        "4",
        "--seeds",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
    ]
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "initially correct (n=2)" in out and "wrote" in out
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["methods"]["lrp"]["correct"] == [1.0, 0.5, 0.0, 0.0]
    assert d["methods"]["gi"]["false"] == [0.0, 0.0, 1.0, 1.0]
    assert d["methods"]["random"]["seeds"] == [0, 1]
    assert (tmp_path / "r.csv").read_text().startswith("method,subset,k,n,accuracy,std\n")


def test_cli_via_main(model, tmp_path, capsys):
    cli = pytest.importorskip("textlrp.cli")
    model_path = tmp_path / "toy.npz"
    model.save(model_path)
    tsv = tmp_path / "d.tsv"
    write_tsv(tsv)
    assert (
        cli.main(
            [
                "deletion",
                "--data",
                str(tsv),
                "--model",
                str(model_path),
                "--methods",
                "lrp",
                "-k",
                "2",
                "--min-length",
                "4",
                "--rules",
                "prop",
            ]
        )
        == 0
    )
    assert "lrp-prop" in capsys.readouterr().out
    # a user mistake: one clear line, exit code 2
    assert (
        cli.main(["deletion", "--data", str(tsv), "--model", str(model_path), "--methods", "lime"])
        == 2
    )
    assert "unknown method" in capsys.readouterr().err


def naive_curves(model, sents, labels, *, method, rule, k, mode, target, seed):
    """The protocol as a plain per-sentence loop (independent of the batched code and its cache)."""
    hits = []
    for s, label in zip(sents, labels):
        T = len(s)
        pred = int(np.argmax(model.predict([s])[0]))
        correct = pred == label
        params = {"rule": rule} if method == "lrp" else {"seed": seed} if method == "random" else {}
        rel = model.explain(
            s, method=method, target=label if target == "true" else pred, **params
        ).relevance
        decreasing = correct or target == "predicted"
        order = sorted(range(T), key=lambda t: (-rel[t] if decreasing else rel[t], t))
        row = [correct]
        for j in range(1, k + 1):
            gone = order[: min(j, T if mode == "zero" else T - 1)]
            if mode == "zero":
                scores = model.predict([s], deleted=[gone])[0]
            else:
                scores = model.predict([[w for t, w in enumerate(s) if t not in gone]])[0]
            row.append(int(np.argmax(scores)) == label)
        hits.append((correct, row))
    c = np.array([r for ok, r in hits if ok], float)
    f = np.array([r for ok, r in hits if not ok], float)
    return c.mean(axis=0), f.mean(axis=0)


@pytest.mark.parametrize(
    "mode,target", [("zero", "true"), ("remove", "true"), ("zero", "predicted")]
)
def test_matches_naive_loop_on_random_model(make_random_model, mode, target):
    rng = np.random.default_rng(5)
    arrays = make_random_model(rng, e=4, layers=((5, True),), V=12, C=3, scale=1.0)
    toy = textlrp.from_arrays(
        arrays["embedding"], arrays["lstm_layers"], arrays["head"], dtype=np.float64
    )
    # a small vocabulary, so that methods often agree and the shared prediction cache is exercised
    sents = [rng.integers(0, 12, size=int(rng.integers(3, 9))).tolist() for _ in range(60)]
    labels = rng.integers(0, 3, size=60).tolist()
    res = word_deletion(
        toy, sents, labels,
        DeletionConfig(methods=("lrp", "lrp-abs", "gi", "occlusion", "random"), k=6,
                       min_length=3, mode=mode, target=target, random_seeds=(3,)),
    )
    assert 0 < res.n_correct < 60 and res.n_forward < res.n_steps
    for name, method, rule in (
        ("lrp", "lrp", "signal-take-all"),
        ("lrp-abs", "lrp", "abs"),
        ("gi", "gi", "signal-take-all"),
        ("occlusion", "occlusion", "signal-take-all"),
        ("random", "random", "signal-take-all"),
    ):
        c, f = naive_curves(
            toy, sents, labels, method=method, rule=rule, k=6, mode=mode, target=target, seed=3
        )
        np.testing.assert_allclose(res.methods[name].correct, c, err_msg=name)
        np.testing.assert_allclose(res.methods[name].false, f, err_msg=name)


@requires_sst("test.txt")
def test_load_labelled_sst_test_set():
    sents, labels = load_labelled(SST_DIR / "test.txt")  # format detected from the content
    assert len(sents) == 2210
    assert np.bincount(labels).tolist() == [279, 633, 389, 510, 399]  # the README's counts
    assert sum(len(s) >= 10 for s in sents) == 1849  # the protocol's sentences


def test_cli_options_reach_the_protocol(model, tmp_path, capsys):
    model_path = tmp_path / "toy.npz"
    model.save(model_path)
    tsv = tmp_path / "d.tsv"
    write_tsv(tsv)
    argv = ["deletion", "--data", str(tsv), "--format", "tsv", "--model", str(model_path),
            "--methods", "lrp,random", "--seeds", "3", "-k", "2", "--min-length", "3",
            "--target", "predicted", "--order", "increasing", "--mode", "remove", "--eps", "0.01",
            "--bias-factor", "1", "--threads", "1", "--batch-size", "2", "--json", str(tmp_path / "r.json")]  # fmt: skip
    assert run_cli(argv) == 0
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["n_used"] == 5 and d["k"] == [0, 1, 2]
    assert d["params"] | {"methods": None} == {
        "methods": None, "k": 2, "min_length": 3, "target": "predicted", "order": "increasing",
        "mode": "remove", "random_seeds": [0, 1, 2], "eps": 0.01, "bias_factor": 1.0,
        "rules": {"lrp": "signal-take-all"}, "threads": 1, "batch_size": 2,
    }  # fmt: skip
    assert d["order"] == {"correct": "increasing", "false": "increasing"}
    with pytest.raises(UsageError, match="invalid choice"):
        run_cli(["deletion", "--data", str(tsv), "--mode", "mask"])


def _continuous_gru(rng, e=3, d=4, C=3):
    def w(*shape):
        return rng.normal(scale=0.8, size=shape)

    layer = [{"W_ih": w(3 * d, e), "W_hh": w(3 * d, d), "b_ih": w(3 * d), "b_hh": w(3 * d)}
             for _ in range(2)]
    return textlrp.from_arrays(None, [layer], [{"W": w(C, 2 * d), "b": w(C)}], cell="gru",
                               pooling="mean", dtype=np.float64)


@pytest.mark.parametrize("mode", ["zero", "remove"])
def test_continuous_gru_matches_naive_loop(mode):
    """Time steps of a continuous model are deleted like words (zeroed or dropped)."""
    rng = np.random.default_rng(11)
    toy = _continuous_gru(rng)
    seqs = [rng.normal(size=(int(rng.integers(3, 8)), 3)) for _ in range(40)]
    labels = rng.integers(0, 3, size=40).tolist()
    res = word_deletion(toy, seqs, labels,
                        DeletionConfig(methods=("lrp", "occlusion", "random"), k=4,
                                       min_length=3, mode=mode, random_seeds=(2,)))
    assert 0 < res.n_correct < 40
    for name in ("lrp", "occlusion", "random"):
        c, f = naive_curves(toy, seqs, labels, method=name, rule="signal-take-all", k=4,
                            mode=mode, target="true", seed=2)
        np.testing.assert_allclose(res.methods[name].correct, c, err_msg=name)
        np.testing.assert_allclose(res.methods[name].false, f, err_msg=name)


def test_first_deleted_is_deletion_order_for_every_sentence():
    """The one-sort ordering of a whole run equals deletion_order sentence by sentence:
    ties (many, from small integers) by position, each sentence in its own direction,
    capped per sentence."""
    from textlrp.experiments import _first_deleted, _Packed, _steps

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rel = rng.integers(-3, 4, size=int(offsets[-1])).astype(float)
    rel[rng.random(len(rel)) < 0.1] = -0.0  # -0.0 ties with 0.0
    decreasing = rng.random(300) < 0.5
    K = 6
    cap = np.maximum(lengths - rng.integers(0, 2, size=300), 0)
    first = _first_deleted(rel, _Packed(np.zeros(len(rel), np.int64), offsets), decreasing, K,
                           cap)
    steps = _steps(first)
    for i in range(300):
        order = deletion_order(rel[offsets[i]:offsets[i + 1]], bool(decreasing[i]))
        c = min(K, int(cap[i]))
        np.testing.assert_array_equal(first[i, :c], order[:c])
        assert (first[i, c:] == -1).all()
        for k in range(1, K + 1):
            row = steps[i, k - 1]
            np.testing.assert_array_equal(row[row != np.iinfo(np.int64).max],
                                          np.sort(order[:min(k, c)]))


def test_regression_model_is_refused():
    rng = np.random.default_rng(0)
    reg = textlrp.from_arrays(rng.normal(size=(5, 2)),
                              [[{"W_ih": rng.normal(size=(8, 2)), "W_hh": rng.normal(size=(8, 2)),
                                 "b": np.zeros(8)}]],
                              [{"W": rng.normal(size=(1, 2)), "b": None}], dtype=np.float64)
    assert reg.regression
    with pytest.raises(ValueError, match="regression"):
        word_deletion(reg, [[1, 2, 3]], [0], DeletionConfig(methods=("lrp",), min_length=1))
