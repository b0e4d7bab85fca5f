"""Tokenise raw text the way the Stanford Sentiment Treebank is written.

nltk's TreebankWordTokenizer (pure regular expressions, no downloaded data)
plus the normalisation SST uses: brackets become ``-LRB-``/``-RRB-`` (``-LSB-``,
``-RSB-``, ``-LCB-``, ``-RCB-``), double quotes become ```` `` ```` and ``''``,
contractions split (``don't`` -> ``do n't``), typographic quotes, apostrophes
and dashes are mapped to their ASCII forms first. With ``lowercase=True`` every
token is lowercased, escapes included (``-lrb-``), as a lowercasing model's
vocabulary is.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["display_token", "tokenize"]

# Typographic characters -> the ASCII the treebank was written in.
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",  # left single quote
        "\u2019": "'",  # right single quote / apostrophe
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",  # prime
        "\u00b4": "'",  # acute accent used as apostrophe
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "--",  # en dash
        "\u2014": "--",  # em dash
        "\u2015": "--",
        "\u2212": "-",  # minus sign
        "\u2010": "-",
        "\u2011": "-",
        "\u2026": "...",
        "\u00a0": " ",  # no-break space
        "\u2009": " ",
        "\u200b": "",  # zero-width space
        "\ufeff": "",
    }
)

# Words whose final period belongs to them (as in SST: "Mr.", "vs.", "etc.").
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "jr", "sr", "st", "vs", "etc", "no", "inc", "ltd", "co", "corp", "bros", "mt", "prof", "gen", "sept", "oct", "nov", "dec", "jan", "feb", "aug", "al", "approx"]
)
_WORD_PERIOD = re.compile(r"^([^\W\d_][\w'-]*)\.$")


@lru_cache(maxsize=1)
def _treebank():  # type: ignore[no-untyped-def]
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


def _split_inner_periods(tokens: list[str]) -> list[str]:
    # The treebank tokenizer only splits the text's final period; in running
    # text "goes. Then" must give "goes", ".", "Then" like SST's own sentences.
    out: list[str] = []
    for k, tok in enumerate(tokens):
        m = _WORD_PERIOD.match(tok) if k + 1 < len(tokens) else None
        if m and m.group(1).lower() not in _ABBREVIATIONS and len(m.group(1)) > 1:
            out.extend((m.group(1), "."))
        else:
            out.append(tok)
    return out


def tokenize(text: str, *, lowercase: bool = False) -> list[str]:
    """Split ``text`` into SST-style tokens.

    >>> tokenize("Don't waste your money (really).")
    ['Do', "n't", 'waste', 'your', 'money', '-LRB-', 'really', '-RRB-', '.']

    Raises ValueError for empty or whitespace-only text. Runs in time linear in
    the length of the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() needs a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    if not text.strip():
        raise ValueError("empty text: nothing to tokenize")
    tokens = _treebank().tokenize(text, convert_parentheses=True)
    tokens = _split_inner_periods(tokens)
    if lowercase:
        tokens = [t.lower() for t in tokens]
    return tokens


# The treebank escapes, undone for showing a token to a person. Lowercase forms too:
# a lowercasing model's tokens are "-lrb-", not "-LRB-".
_DISPLAY = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
            "``": '"', "''": '"', "`": "'"}
_DISPLAY.update({k.lower(): v for k, v in _DISPLAY.items()})


def display_token(token: str) -> str:
    """The token as the user wrote it: ``-LRB-`` -> ``(``, ```` `` ```` and ``''`` -> ``"``.

    Only the treebank's escapes change; every other token is returned as it is. The
    treebank form stays the one the vocabulary is looked up with.
    """
    return _DISPLAY.get(token, token)
