"""SST-style tokenisation (textlrp.tokenize)."""

from __future__ import annotations

import pytest
from conftest import SST_DIR, requires_sst

from textlrp import tokenize


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("don't waste your money", ["do", "n't", "waste", "your", "money"]),
        ("It's a film they'll love, isn't it?", ["It", "'s", "a", "film", "they", "'ll", "love", ",", "is", "n't", "it", "?"]),
        ("I can't, I won't, I'd rather", ["I", "ca", "n't", ",", "I", "wo", "n't", ",", "I", "'d", "rather"]),
        ("You're gonna hate it", ["You", "'re", "gon", "na", "hate", "it"]),
        ("We've seen the 1990's", ["We", "'ve", "seen", "the", "1990", "'s"]),
    ],
)
def test_contractions(text, tokens):
    assert tokenize(text) == tokens


def test_punctuation():
    assert tokenize("Wow... really?! Yes -- no; maybe: 50% for $5.") == [
        "Wow", "...", "really", "?", "!", "Yes", "--", "no", ";", "maybe", ":", "50", "%", "for", "$", "5", ".",
    ]


def test_inner_sentence_periods_split_but_abbreviations_kept():
    assert tokenize("It drags. Mr. Smith hates it. Vs. the book, etc. fine.") == [
        "It", "drags", ".", "Mr.", "Smith", "hates", "it", ".", "Vs.", "the", "book", ",", "etc.", "fine", ".",
    ]


def test_brackets_use_ptb_escapes():
    assert tokenize("a (b) [c] {d}") == ["a", "-LRB-", "b", "-RRB-", "-LSB-", "c", "-RSB-", "-LCB-", "d", "-RCB-"]


def test_quotes_become_backticks():
    assert tokenize('He said "great" film') == ["He", "said", "``", "great", "''", "film"]


def test_unicode_quotes_apostrophes_and_dashes_normalised():
    assert tokenize("\u201cIt\u2019s great\u201d \u2014 it isn\u2019t\u2026") == tokenize('"It\'s great" -- it isn\'t...')
    assert tokenize("\u201cIt\u2019s great\u201d") == ["``", "It", "'s", "great", "''"]
    assert tokenize("caf\u00e9 na\u0131ve") == ["caf\u00e9", "na\u0131ve"]
    # NFC: a decomposed accent becomes the composed character SST uses
    assert tokenize("cafe\u0301") == ["caf\u00e9"]
    assert tokenize("a\u00a0b") == ["a", "b"]


def test_lowercase_lowercases_escapes_too():
    assert tokenize("Great (REALLY) Film", lowercase=True) == ["great", "-lrb-", "really", "-rrb-", "film"]
    assert tokenize("Great", lowercase=False) == ["Great"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\u00a0", "\u200b"])
def test_empty_or_whitespace_raises(text):
    with pytest.raises(ValueError, match="empty text"):
        tokenize(text)


def test_not_a_string():
    with pytest.raises(TypeError, match="str"):
        tokenize(["a", "b"])  # type: ignore[arg-type]


def test_very_long_text():
    text = "A good film, isn't it (sort of)? " * 5000  # 165k characters, one "sentence"
    tokens = tokenize(text)
    one = ["A", "good", "film", ",", "is", "n't", "it", "-LRB-", "sort", "of", "-RRB-", "?"]
    assert tokens == one * 5000


@requires_sst("dev.txt")
def test_reproduces_sst_tokenisation_of_detokenised_dev_sentences():
    treebank = pytest.importorskip("nltk.tokenize.treebank", reason="needs nltk (the test extra)")
    TreebankWordDetokenizer = treebank.TreebankWordDetokenizer

    from textlrp.sst import load_sentences

    detok = TreebankWordDetokenizer()
    sentences = load_sentences(SST_DIR / "dev.txt")[:400]  # all 1101: 1099 agree (docs/models.md)
    same = sum(tokenize(detok.detokenize(toks, convert_parentheses=True)) == toks for toks, _ in sentences)
    assert same / len(sentences) >= 0.99
