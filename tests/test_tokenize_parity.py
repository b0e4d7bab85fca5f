"""The fast tokenizer against nltk (textlrp.tokenize vs textlrp.tokenize.tokenize_reference).

Every difference is a bug in the fast tokenizer. Inputs: every SST sentence, as typed by a
user (tests/detok.py) and as its tokens joined with spaces; a seeded corpus of generated
hard cases; every character the two regular-expression engines class differently.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from detok import SST_DIR, detokenize, sst_sentences

from textlrp.tokenize import tokenize, tokenize_reference

pytest.importorskip("nltk", reason="the reference tokenizer needs nltk (the test extra)")


def _outcome(fn, text, lowercase):
    try:
        return fn(text, lowercase=lowercase)
    except (ValueError, TypeError) as e:
        return f"{type(e).__name__}: {e}"


def assert_parity(cases: list[tuple[str, bool]]) -> None:
    bad = []
    for text, lowercase in cases:
        fast = _outcome(tokenize, text, lowercase)
        ref = _outcome(tokenize_reference, text, lowercase)
        if fast != ref:
            bad.append((text, lowercase, fast, ref))
    if bad:
        lines = [f"{len(bad)} of {len(cases)} inputs tokenised differently; first ones:"]
        for text, lowercase, fast, ref in bad[:8]:
            shown = text if len(text) <= 300 else text[:300] + f"... ({len(text)} chars)"
            lines.append(f"  {shown!r} lowercase={lowercase}\n    fast: {fast!r}\n    nltk: {ref!r}")
        pytest.fail("\n".join(lines), pytrace=False)


# --- SST ------------------------------------------------------------------------------------


def test_every_sst_sentence_detokenised_and_joined():
    sentences = sst_sentences()
    if sentences is None:
        pytest.skip(f"SST data not found at {SST_DIR}")
    assert len(sentences) == 11855
    cases = []
    for k, tokens in enumerate(sentences):
        cases.append((detokenize(tokens), k % 2 == 1))
        cases.append((" ".join(tokens), k % 2 == 0))
    assert_parity(cases)


def test_detokeniser_gives_typed_text():
    tokens = ["I", "ca", "n't", "say", "-LRB-", "really", "-RRB-", "it", "'s", "``", "great",
              "''", ",", "gon", "na", "cost", "$", "5", "..."]
    assert detokenize(tokens) == "I can't say (really) it's \"great\", gonna cost $5..."


# --- generated hard cases ---------------------------------------------------------------------

_WORDS = ["film", "movie", "The", "A", "I", "US", "it", "a", "x", "Rock", "OK", "naïve", "café",
          "co-op", "sci-fi", "and/or", "U.S.", "E.T.", "Mr.", "mr.", "Dr", "etc.", "vs.", "No.",
          "no.", "Inc.", "a.m.", "p.m", "i.e.", "e.g.", "J.", "St.", "approx.", "Ltd.", "al.",
          "end.", "goes.", "x.", "it's.", "well-made.", "o'clock", "rock'n'roll", "ol'", "'n'",
          "y'all", "ma'am", "_under_", "snake_case", "CamelCase", "ALLCAPS", "x2", "2x", "H2O"]
_CONTRACTIONS = [
    "don't", "DON'T", "Don't", "can't", "CAN'T", "won't", "Won't", "isn't", "ain't", "n't", "N'T",
    "cannot", "Cannot", "CANNOT", "can not", "gonna", "Gonna", "GONNA", "wanna", "WANNA", "gotta",
    "gimme", "lemme", "Lemme", "more'n", "d'ye", "D'ye", "'tis", "'Tis", "'TIS", "'twas",
    "'Twas", "' tis", "it's", "IT'S", "It'S", "I'm", "I'M", "I'd", "we'll", "WE'LL", "We'Ll",
    "they're", "THEY'RE", "you've", "YOU'VE", "'s", "'S", "'m", "'d", "'ll", "'re", "'ve", "'",
    "''", "'''", "90's", "'90s", "the '60s", "players'", "James'", "n'", "'em", "gim me",
    "wan na", "GİMME", "gımme", "ſo", "'tiſ", "caNNot", "lemme's", "wanna'", "gonna.",
]
_QUOTES = ['"', "'", "`", "``", "''", "```", "'''", '""', '"""', "\u2018", "\u2019", "\u201c",
           "\u201d", "\u201a", "\u201b", "\u201e", "\u201f", "\u00ab", "\u00bb", "\u2039",
           "\u203a", "\u2032", "\u2033", "\u00b4", "\uff02", "\u300c", "\u300d"]
_PUNCT = [".", ",", ";", ":", "?", "!", "?!", "!?", "!!!", "??", ",,", ",:", "::", ":,", ", ,",
          "...", "..", "....", ". . .", "\u2026", "\u2026.", ".,", ",.", "@", "#", "$", "%", "&",
          "*", "/", "\\", "|", "^", "~", "_", "=", "+", "-", "--", "---", "----", "- -",
          "\u2013", "\u2014", "\u2015", "\u2212", "\u2010", "\u2011", "\u00b7", "\u2022", "\u00a7",
          "\u00b6", "\u2020", "&amp;", "<br />", "<i>", "</i>", "->", "<-", "=>", ":)", ":-(",
          ";)", ":D", ":P", "^_^", "(:", "):", "(;"]
_BRACKETS = ["(", ")", "[", "]", "{", "}", "<", ">", "()", "[]", "{}", "<>", ")(", "((", "))",
             "\u27e8", "\u27e9", "\uff08", "\uff09", "\u3010", "\u3011"]
_NUMBERS = ["1", "0", "42", "1,000", "1,000,000", "3.14", "1,000.50", "1.000,50", "10%", "$5",
            "$5.99", "US$5", "5$", "\u00a33", "\u20ac4,50", "\u00a5100", "\u00a2", "-5", "+3",
            "1990s", "'90s", "2:30", "1:2", "4,", ",5", ":5", "5:", "1/2", "8\u00a01/2", "3.",
            ".5", "1.2.3", "1,2,3", "4x4", "#1", "No. 1", "\u0663\u0664", "\uff11\uff12",
            "\u00bd", "\u00b2", "\u2160", "\U00010d40\U00010d41", "\U0001e4f5", "\u0e53", "1e10",
            "0x1F", "12:30:45", "1,a", ",a", ":a", "a,1", "a:1"]
_URLS = ["http://example.com", "https://www.example.com/a/b.html", "www.foo.org.",
         "http://x.y/z?a=1&b=2#frag", "https://example.com/path_(with)_parens", "ftp://h:21/f",
         "mailto:a@b.c", "a.b@example.com", "first.last+tag@sub.example.co.uk.", "@user",
         "#hashtag", "http://example.com/don't", "example.com/...", "C:\\path\\file.txt",
         "../up/one.txt", "localhost:8080", "[1]", "(see http://a.b/c.)"]
_EMOJI = ["\U0001f600", "\U0001f44d\U0001f3fd", "\u2764\ufe0f", "\U0001f1fa\U0001f1f8",
          "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u263a", "\u2605", "\u00a9", "\u2122",
          "\U0001f4a9.", "(\U0001f600)", "\U0001f600!"]
_SCRIPTS = ["\u65e5\u672c\u8a9e", "\u3053\u308c\u306f\u3002", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
            "\u03a3\u039f\u03a6\u039f\u03a3", "\u039f\u0394\u039f\u03a3.", "\u03a3", "\u0391\u03a3'\u03a3",
            "\u03a3\u03a3 \u03a3", "\u0440\u0443\u0441\u0441\u043a\u0438\u0439", "\u0420\u0423\u0421.",
            "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea",
            "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22", "\ud55c\uad6d\uc5b4",
            "\u0130stanbul", "\u0131i", "\u017f", "stra\u00dfe", "STRASSE", "\ufb01ne", "\u212a",
            "\u212b", "\u01c5", "\u1e9e", "\u0149", "\uff21\uff22", "\u4e2d\u6587\uff0c\u6d4b\u8bd5\u3002",
            "\u0928\u092e\u0938\u094d\u0924\u0947\u0964", "\u10d0\u10d1", "\u1f88"]
_COMBINING = ["e\u0301", "a\u0308", "\u0301", "n\u0303", "i\u0307", "A\u030a", "\u0308a",
              "'\u0301", ".\u0301", ",\u0301", "\u0301'", "o\u0302\u0323", "\u20dd",
              "\u0345", "c\u0327", "\u0338"]
_CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f",
             "\x85", "\u2028", "\u2029", "\u200b", "\ufeff", "\u00a0", "\u2009", "\u3000",
             "\u200e", "\u202e", "\u00ad", "\u2060", "\u180e", "\u200c", "\u200d", "\ufffd",
             "\ud800", "\udfff", "\U0010ffff", "\uffff"]
_SEPARATORS = [" "] * 12 + [""] * 6 + ["  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c",
                                       "\x1f", "\x85", "\u2028", "\u00a0", "\u3000", " \n"]
_ENDINGS = ["", "", "", ".", ". ", ".\n", ". \n", ".\n\n", '."', ".'", ".)", '.")', ".'\n",
            ". )", "..", "...", "?", "!", ",", ":", ",\n", ":\n", ", ", ".\x1c", ".\x1f", ".\x85",
            ".\u2028", ".\u3000", ". \x1c", ".\t", '"', "''", "'", ")", ". .", "\n", "\r\n",
            ".>", ".]'", ".}", ". '", ".``"]
_STARTS = ["", "", "", '"', "'", "``", "''", "(", '("', "' ", '" ', "\n", " ", "\t", ".", ",",
           ":", "'tis", "--", "...", "-"]
_POOLS = [_WORDS] * 6 + [_CONTRACTIONS] * 3 + [_QUOTES] * 2 + [_PUNCT] * 3 + [
    _BRACKETS, _NUMBERS, _URLS, _EMOJI, _SCRIPTS, _COMBINING, _CONTROLS]


def _random_char(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return chr(rng.randrange(32, 127))
    if r < 0.6:
        return chr(rng.randrange(0, 32))
    if r < 0.9:
        return chr(rng.randrange(0x80, 0x3000))
    return chr(rng.randrange(0x3000, 0x110000))


def generated_corpus(n: int, seed: int) -> list[str]:
    """n strings of hard cases (deterministic for a seed)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:  # empty, whitespace-only, or one odd character
            out.append(rng.choice(["", " ", "\t\n", "\r\n", "\x0b\x0c", "\x1c\x1d", "\u00a0",
                                   "\u200b", "\ufeff ", "\u3000\u2028", _random_char(rng)]))
            continue
        if kind < 0.15:  # random characters
            out.append("".join(_random_char(rng) for _ in range(rng.randrange(1, 40))))
            continue
        parts = [rng.choice(_STARTS)]
        for _ in range(rng.randrange(1, 25)):
            frag = rng.choice(rng.choice(_POOLS))
            if rng.random() < 0.05:
                frag = frag.upper() if rng.random() < 0.5 else frag.title()
            if rng.random() < 0.05:
                frag = _random_char(rng) + frag
            parts.append(frag)
            parts.append(rng.choice(_SEPARATORS))
        if rng.random() < 0.5:
            parts.pop()  # the last separator
        parts.append(rng.choice(_ENDINGS))
        out.append("".join(parts))
    return out


def test_generated_hard_cases():
    corpus = generated_corpus(20_000, seed=11)
    rng = random.Random(12)
    assert_parity([(text, rng.random() < 0.5) for text in corpus])


def test_hand_picked_hard_cases():
    cases = [
        "", " ", "\t\r\n", "\x00", "a\x00b", "\x1c", "x.\x1c", "x. \x1c", "x.\x1c\n", "x.\x1f",
        '"Hi," he said.', "''Hi'' ''", "He said ''hi''.", "(''hi'')", "[\"a\"]", "<''b''>",
        "'tis 'Twas 'TIS", "x 'tis", "x'tis", "cannot CANNOT CanNot", "gonna wanna gotta",
        "wanna\n", "wanna.", "d'ye more'n", "GİMME gımme", "ΟΔΟΣ ΣΟΦΟΣ.", "A Σ. B",
        "a,,b", "a,,,b", "a,:b", "a::b", "1,000,000", "a,1", "a,\n", "a,,\n", "a:", "a,",
        "go... now", "go.... now", "a. b. c.", "a.. b", "U.S. policy.", "Mr. Smith. Mrs. X.",
        "e.g. this", "it ends.", "it ends.)", "it ends.')\" ", "it ends .", ".", "..", "x.'",
        "'' '' ''", "' ' '", "a' ' b", "a'' b", "players' game", "'s 's", "it's 's", "x's'",
        "don't.", "DON'T!", "N'T", "n't", "can't'", "I'm'", "''s", "''ll", "a'll be",
        "http://example.com/a,b?c=d&e=f.", "a@b.c", "$1,000.50!", "--", "---", "a--b", "a---b",
        "(a)(b)", "{[(<>)]}", "x" * 100_000, "word " * 20_000, "a, " * 30_000 + "end.",
        "don't (\"really\") " * 5_000 + ".", ".\n" * 50_000, "\u201cIt\u2019s\u201d\u2014ok\u2026",
        "\u200b\u200b", "\ufeffHello", "caf\u00e9 cafe\u0301", "\U0010ffff.", "a,\U00010d40b",
        "a,\U0001e5f1", "a:\u0663", "a,\uff11",
    ]
    assert_parity([(t, lc) for t in cases for lc in (False, True)])


# --- the characters the engines class differently -------------------------------------------


def test_every_space_and_digit_character():
    """Every character either engine takes for whitespace or a digit, in the contexts where
    nltk's patterns test for them (after a comma or colon; after a final period)."""
    regex = pytest.importorskip("regex")
    import re

    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    special = set()
    for pattern in (r"\s", r"\d"):
        special |= set(re.findall(pattern, everything)) | set(regex.findall(pattern, everything))
    assert len(special) > 700
    cases = []
    for c in sorted(special):
        for template in ("a,{}b", "a:{}", "x.{}", "x.{}\n", "x.){} ", "{}x.{}y", "a'{}", "{}"):
            cases.append((template.format(c, c), False))
    assert_parity(cases)


def test_lowercase_matches_per_token_lowercasing_with_final_sigma():
    # whole-string lower() in the fast path must equal nltk's token-by-token lowering
    for text in ["ΟΔΟΣ.", "ΟΔΟΣ'Σ", "Σ Σ", "ΑΣ-ΑΣ", "ΑΣ.Β", "İSTANBUL"]:
        assert tokenize(text, lowercase=True) == [t.lower() for t in tokenize(text)]
    assert_parity([(t, True) for t in ["ΟΔΟΣ.", "ΟΔΟΣ'Σ", "ΑΣ:ΒΣ", "Σ\x1cΣ", "ΑΣ\x85Σ"]])


def test_importing_textlrp_does_not_import_nltk():
    code = "import sys, textlrp; textlrp.tokenize('x'); print('nltk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
