"""SST tree and TSV readers (textlrp.sst)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SST_DIR, requires_sst

from textlrp.sst import SST_CLASS_NAMES, SSTFormatError, load_phrases, load_sentences, load_tsv

needs_sst = requires_sst("dev.txt")

TREES = """\
(3 (2 (2 The) (2 Rock)) (4 (2 is) (4 great)))
(1 (2 -LRB-) (1 (0 awful) (2 -RRB-)))

(3 (2 (2 The) (2 Rock)) (2 ``))
"""


def write(tmp_path: Path, text: str, name: str = "trees.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sentences_root_labels_and_tokens(tmp_path):
    got = load_sentences(write(tmp_path, TREES))
    assert got == [
        (["The", "Rock", "is", "great"], 3),
        (["-LRB-", "awful", "-RRB-"], 1),
        (["The", "Rock", "``"], 3),
    ]


def test_phrases_all_subtrees_deduplicated_in_order(tmp_path):
    got = load_phrases(write(tmp_path, TREES))
    assert got[:7] == [
        (["The", "Rock", "is", "great"], 3),
        (["The", "Rock"], 2),
        (["The"], 2),
        (["Rock"], 2),
        (["is", "great"], 4),
        (["is"], 2),
        (["great"], 4),
    ]
    # the third tree repeats "The Rock", "The", "Rock": only new (tokens, label) pairs are added
    assert got[-2:] == [(["The", "Rock", "``"], 3), (["``"], 2)]
    keys = [(tuple(t), y) for t, y in got]
    assert len(keys) == len(set(keys))
    assert load_phrases(write(tmp_path, TREES)) == got  # deterministic


def test_same_phrase_with_two_labels_is_kept_twice(tmp_path):
    got = load_phrases(write(tmp_path, "(2 (2 ok) (2 .))\n(3 (3 ok) (2 .))\n"))
    assert (["ok"], 2) in got and (["ok"], 3) in got


def test_escapes_and_nbsp_token(tmp_path):
    # SST escapes "/" and "*" and has one token with a no-break space inside.
    got = load_sentences(write(tmp_path, "(2 (2 and\\/or) (2 (2 8\u00a01\\/2) (2 \\*\\*\\*)))\n"))
    assert got == [(["and/or", "8\u00a01/2", "***"], 2)]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("(3 (2 The) (2 Rock)", "malformed"),
        ("(3 (2 The) (2 Rock)))", "malformed"),
        ("The Rock is great", "expected a tree"),
        ("(7 (2 The) (2 Rock))", "outside 0..4"),
        ("(x (2 The) (2 Rock))", "not an integer"),
        ("(3 (2 The Rock) (2 is))", "exactly one token"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = write(tmp_path, "(2 (2 fine) (2 .))\n\n" + line + "\n")
    with pytest.raises(SSTFormatError, match=problem) as info:
        load_sentences(path)
    assert f"{path}, line 3" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_sentences(tmp_path / "nope.txt")


def test_tsv_labels_by_index_and_name(tmp_path):
    path = write(tmp_path, "# comment\n0\tDon't waste your money.\nvery positive\tA (great) film\n\n", "d.tsv")
    assert load_tsv(path) == [
        (["Do", "n't", "waste", "your", "money", "."], 0),
        (["A", "-LRB-", "great", "-RRB-", "film"], 4),
    ]
    assert load_tsv(path, lowercase=True)[1][0][1] == "-lrb-"
    assert load_tsv(path, tokenize=False)[0][0] == ["Don't", "waste", "your", "money."]
    assert load_tsv(path, tokenize=False, lowercase=True)[0][0][0] == "don't"
    custom = write(tmp_path, "pos\tgood\nneg\tbad\n", "c.tsv")
    assert load_tsv(custom, ["neg", "pos"]) == [(["good"], 1), (["bad"], 0)]


@pytest.mark.parametrize(
    "line, problem",
    [("3 no tab", "label<TAB>text"), ("9\tx", "outside"), ("great\tx", "unknown label"), ("1\t   ", "empty text")],
)
def test_tsv_errors(tmp_path, line, problem):
    path = write(tmp_path, "0\tok\n" + line + "\n", "bad.tsv")
    with pytest.raises(SSTFormatError, match=problem) as info:
        load_tsv(path)
    assert "line 2" in str(info.value)


@needs_sst
def test_real_dev_file():
    sentences = load_sentences(SST_DIR / "dev.txt")
    assert len(sentences) == 1101
    assert SST_CLASS_NAMES[2] == "neutral"
    assert all(0 <= y <= 4 for _, y in sentences)
    assert sentences[0][0][:3] == ["It", "'s", "a"]


def test_sst_skip_reason_names_the_path_looked_at():
    mark = requires_sst("dev.txt", "no-such-split.txt")
    assert mark.args == (True,)
    # every missing path is named (dev.txt too on a machine without the data)
    missing = [str(SST_DIR / n) for n in ("dev.txt", "no-such-split.txt")
               if not (SST_DIR / n).is_file()]
    assert mark.kwargs["reason"] == f"SST data not found: {', '.join(missing)}"
    assert str(SST_DIR).endswith("shared/data/sst")
