"""Tokenise raw text the way the Stanford Sentiment Treebank is written.

nltk's TreebankWordTokenizer (pure regular expressions, no downloaded data)
plus the normalisation SST uses: brackets become ``-LRB-``/``-RRB-`` (``-LSB-``,
``-RSB-``, ``-LCB-``, ``-RCB-``), double quotes become ```` `` ```` and ``''``,
contractions split (``don't`` -> ``do n't``), typographic quotes, apostrophes
and dashes are mapped to their ASCII forms first. With ``lowercase=True`` every
token is lowercased, escapes included (``-lrb-``), as a lowercasing model's
vocabulary is.

:func:`tokenize_reference` computes exactly that with nltk (imported only when it
is called; nltk is not a dependency of textlrp). :func:`tokenize` gives the same
tokens 13-25x faster, without nltk: it applies nltk's rewriting steps in nltk's
order to the same string, but skips each step a substring test shows cannot
change anything, does the steps that pad or replace fixed strings with
``str.replace``, and recasts the clitic patterns to start with a literal.
Parity with nltk >= 3.10.4 is tested on every SST sentence and on generated hard
cases (tests/test_tokenize_parity.py); older nltk, which ran the patterns on the
stdlib ``re``, differed only for U+001C..U+001F after a final period and for the
digits of recent Unicode versions after a comma or colon.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["display_token", "tokenize", "tokenize_reference"]

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


# the same mapping as a substitution: str.translate with a dict costs ~80 ns a character
_TYPOGRAPHIC = {chr(k): v for k, v in _TRANSLATE.items()}
_TYPOGRAPHIC_RX = re.compile("[" + "".join(map(re.escape, _TYPOGRAPHIC)) + "]")
_EMPTY = "empty text: nothing to tokenize"


def _check_type(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"tokenize() needs a str, got {type(text).__name__}")


# --- the reference: nltk itself --------------------------------------------------------------


@lru_cache(maxsize=1)
def _nltk_treebank():  # type: ignore[no-untyped-def]
    try:
        from nltk.tokenize import TreebankWordTokenizer
    except ImportError as e:
        raise ImportError("tokenize_reference needs nltk: pip install nltk") from e

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


def tokenize_reference(text: str, *, lowercase: bool = False) -> list[str]:
    """:func:`tokenize` computed with nltk's TreebankWordTokenizer, the definition it is
    tested against. Needs nltk (``pip install nltk``); 13-25x slower than :func:`tokenize`.
    """
    _check_type(text)
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    if not text.strip():
        raise ValueError(_EMPTY)
    tokens = _nltk_treebank().tokenize(text, convert_parentheses=True)
    tokens = _split_inner_periods(tokens)
    if lowercase:
        tokens = [t.lower() for t in tokens]
    return tokens


# --- the fast tokenizer ----------------------------------------------------------------------
# nltk >= 3.10.4 runs the Treebank patterns on the third-party `regex` engine, whose classes
# differ from the stdlib's in two places that matter here: its \s leaves out U+001C..U+001F
# (str.split and re's \s include them), and its \d knows the decimal digits of Unicode
# versions newer than Python's own database. The two character sets below restore those.
_RX_SPACE = " \t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_NEW_DIGITS = (
    "\U00010d40-\U00010d49\U000116d0-\U000116e3\U00011bf0-\U00011bf9\U00011de0-\U00011de9"
    "\U00011f50-\U00011f59\U00016130-\U00016139\U00016d70-\U00016d79\U0001ccf0-\U0001ccf9"
    "\U0001e4f0-\U0001e4f9\U0001e5f1-\U0001e5fa"
)
_CLOSERS = "])}>\"'"  # what may follow the final period: [\]\)}>"\']*

# The steps nltk does with group templates. A pattern that starts with a literal is found by
# a fast scan (one that starts with a character class is tried at every position) and a
# replacement without backreferences is applied in C; so where it is the same rewrite, the
# patterns below match only the character before which nltk inserts a space, looking back
# and ahead for the rest. A callable replacement is ~2x faster than a template in CPython
# 3.11. Comments give nltk's pattern and template.
_OPEN_QUOTE = re.compile(r"([ \(\[{<])(\"|\'{2})")  # same; -> r"\1 `` "
_COMMA = re.compile(r"([:,])([^\d" + _NEW_DIGITS + r"])")  # ([:,])([^\d]) -> r" \1 \2"
_COMMA_END = re.compile(r"([:,])$")  # same; -> r" \1 "
_QUOTE_SPACE = re.compile(r"([^'])' ")  # same; -> r"\1 ' "
# ([^' ])('[sS]|'[mM]|'[dD]|') -> r"\1 \2 ". nltk consumes the leading character and the
# trailing space, but neither can belong to another match (matches end in a space, a space
# cannot lead one): so inserting a space before every apostrophe that has the context is
# the same. The following pass must see its result (a space it inserts can end a match there).
_CLITIC = re.compile(r"'(?<=[^' ]')(?=[sSmMdD]? )")  # -> " '"
# ([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) -> r"\1 \2 ", the same way
_CLITIC_LONG = re.compile(r"(?:'(?=ll |LL |re |RE |ve |VE )|n(?='t )|N(?='T ))(?<=[^' ].)")
# MacIntyre's contractions (nltk compiles these with the stdlib `re`), each -> r" \1 \2 ".
_CONTRACTIONS2 = [
    re.compile(p)
    for p in (
        r"(?i)\b(can)(not)\b", r"(?i)\b(d)('ye)\b", r"(?i)\b(gim)(me)\b", r"(?i)\b(gon)(na)\b",
        r"(?i)\b(got)(ta)\b", r"(?i)\b(lem)(me)\b", r"(?i)\b(more)('n)\b", r"(?i)\b(wan)(na)(?=\s)",
    )
]
_CONTRACTIONS3 = [re.compile(r"(?i) ('t)(is)\b"), re.compile(r"(?i) ('t)(was)\b")]
# Text none of the contraction patterns can match lacks these strings. The case-insensitive
# search is exact for any text ("GİMME" and "ſ" match as in the patterns themselves) but slow;
# ASCII text is checked with `in` after str.lower() (each word has "nn", "mm", "tt" or "'").
_CONTRACTIONS2_ANY = re.compile(r"(?i)cannot|d'ye|gimme|gonna|gotta|lemme|more'n|wanna")
_CONTRACTIONS3_ANY = re.compile(r"(?i) 't(?:is|was)")
# A non-final token that is a word with a period attached (see _split_inner_periods), and a
# fast test for a period that could end one (literal first, the word character looked back at).
_INNER_PERIOD = re.compile(r"(?<!\S)([^\W\d_][\w'-]*)\.(?=\s+\S)")
_INNER_PERIOD_ANY = re.compile(r"\.(?<=[\w'-]\.)(?=\s+\S)")

_PADDED = ";@#$%&"  # nltk pads each with spaces (before the final-period rule)
_BRACKETS = (("(", " -LRB- "), (")", " -RRB- "), ("[", " -LSB- "), ("]", " -RSB- "),
             ("{", " -LCB- "), ("}", " -RCB- "), ("<", " < "), (">", " > "))


def _ascii_form(m: re.Match[str]) -> str:
    return _TYPOGRAPHIC[m[0]]


def _pad_1_2(m: re.Match[str]) -> str:
    return f" {m[1]} {m[2]}"


def _pad_1_space(m: re.Match[str]) -> str:
    return f" {m[1]} "


def _split_1_2_spaced(m: re.Match[str]) -> str:
    return f" {m[1]} {m[2]} "


def _contractions(patterns: list[re.Pattern[str]], t: str) -> str:
    for rx in patterns:
        t = rx.sub(_split_1_2_spaced, t)
    return t


def _space_before(m: re.Match[str]) -> str:
    return " " + m[0]


def _inner_period(m: re.Match[str]) -> str:
    word = m[1]
    if len(word) > 1 and word.lower() not in _ABBREVIATIONS:
        return word + " ."
    return m[0]


def _treebank(t: str) -> str:
    """nltk's TreebankWordTokenizer.tokenize(t, convert_parentheses=True) before its final
    split: the same rewriting steps in the same order, each skipped when it cannot apply."""
    # starting quotes
    if t.startswith('"'):
        t = "``" + t[1:]
    if "``" in t:
        t = t.replace("``", " `` ")
    if '"' in t or "''" in t:
        t = _OPEN_QUOTE.sub(lambda m: m[1] + " `` ", t)
    # punctuation
    if "," in t or ":" in t:
        if ":" not in t and t.count(",") == t.count(", "):
            # every comma is followed by a space (so none by a comma): nltk pads each one
            t = t.replace(", ", " ,  ")
        else:
            t = _COMMA.sub(_pad_1_2, t)
        if t.endswith((",", ":", ",\n", ":\n")):
            t = _COMMA_END.sub(_pad_1_space, t)
    if "..." in t:
        t = t.replace("...", " ... ")
    for c in _PADDED:
        if c in t:
            t = t.replace(c, f" {c} ")
    if "." in t:
        # ([^\.])(\.)([\]\)}>"\']*)\s*$ -> r"\1 \2\3 ": only the last period can match
        stripped = t.rstrip(_RX_SPACE)
        body = stripped.rstrip(_CLOSERS)
        if len(body) >= 2 and body[-1] == "." and body[-2] != ".":
            t = body[:-1] + " ." + stripped[len(body):] + " "
    if "?" in t:
        t = t.replace("?", " ? ")
    if "!" in t:
        t = t.replace("!", " ! ")
    if "' " in t:
        t = _QUOTE_SPACE.sub(lambda m: m[1] + " ' ", t)
    # brackets, padded and converted to PTB symbols
    for c, padded in _BRACKETS:
        if c in t:
            t = t.replace(c, padded)
    if "--" in t:
        t = t.replace("--", " -- ")
    t = " " + t + " "
    # ending quotes
    if "''" in t:
        t = t.replace("''", " '' ")
    if '"' in t:
        t = t.replace('"', " '' ")
    if "'" in t:
        t = _CLITIC.sub(" '", t)
        t = _CLITIC_LONG.sub(_space_before, t)
    if t.isascii():
        # case-insensitive matching of ASCII letters in ASCII text is matching after lower()
        low = t.lower()
        if ("nn" in low or "mm" in low or "tt" in low or "'" in low) and (
            "cannot" in low or "d'ye" in low or "gimme" in low or "gonna" in low
            or "gotta" in low or "lemme" in low or "more'n" in low or "wanna" in low
        ):
            t = _contractions(_CONTRACTIONS2, t)
            low = t.lower()
        if " 'tis" in low or " 'twas" in low:
            t = _contractions(_CONTRACTIONS3, t)
    else:
        if _CONTRACTIONS2_ANY.search(t):
            t = _contractions(_CONTRACTIONS2, t)
        if "'" in t and _CONTRACTIONS3_ANY.search(t):
            t = _contractions(_CONTRACTIONS3, t)
    return t


def tokenize(text: str, *, lowercase: bool = False) -> list[str]:
    """Split ``text`` into SST-style tokens.

    >>> tokenize("Don't waste your money (really).")
    ['Do', "n't", 'waste', 'your', 'money', '-LRB-', 'really', '-RRB-', '.']

    Raises ValueError for empty or whitespace-only text. Runs in time linear in
    the length of the text.
    """
    _check_type(text)
    if not text.isascii():  # ASCII is NFC already and holds no typographic character
        text = _TYPOGRAPHIC_RX.sub(_ascii_form, unicodedata.normalize("NFC", text))
    if not text.strip():
        raise ValueError(_EMPTY)
    t = _treebank(text)
    if "." in t and _INNER_PERIOD_ANY.search(t):
        t = _INNER_PERIOD.sub(_inner_period, t)
    if lowercase:
        # per token in the reference; the same here, as whitespace is neither cased nor
        # case-ignorable and so bounds the context of a final sigma
        t = t.lower()
    return t.split()


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
