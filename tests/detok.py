"""SST sentences as a user would type them: a small detokeniser for PTB-style tokens.

Used by tests/test_tokenize_parity.py and benchmarks/bench_tokenize.py. It only has to give
plausible typed text (the parity tests compare two tokenizers on it), not invert the
tokenizer: ``do n't`` -> ``don't``, ``gon na`` -> ``gonna``, ``-LRB- a -RRB-`` -> ``(a)``,
``` `` a '' ``` -> ``"a"``, no space before ``, . ; : ? ! % ...``, none after ``$ #``.
"""

from __future__ import annotations

from pathlib import Path

SST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst"
SPLITS = ("train", "dev", "test")

_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
            "``": '"', "''": '"'}
_OPENING = {"(", "[", "{", "$", "#", "`"}
# tokens written without a space before them
_CLITICS = {"n't", "N'T", "'s", "'S", "'re", "'RE", "'ve", "'VE", "'ll", "'LL", "'d", "'D",
            "'m", "'M"}
_CLOSING = {".", ",", ";", ":", "?", "!", "%", "...", ")", "]", "}", "'"}
# second halves of nltk's split contractions, and the first half each must follow
_JOINED = {"na": {"gon", "wan"}, "ta": {"got"}, "me": {"gim", "lem"}, "is": {"'t"},
           "was": {"'t"}, "'n": {"more"}}


def detokenize(tokens: list[str]) -> str:
    out: list[str] = []
    quote_open = False
    glue = True  # no space before the next token
    for tok in tokens:
        text = _ESCAPES.get(tok, tok)
        if tok in ("``", "''") or text == '"':
            opening = tok == "``" or (tok != "''" and not quote_open)
            quote_open = opening
            if opening:
                out.append(text if glue else " " + text)
                glue = True
            else:
                out.append(text)
                glue = False
            continue
        attach = glue
        if tok in _JOINED:
            attach = attach or (bool(out) and out[-1].strip().lower() in _JOINED[tok])
        elif tok in _CLITICS or text in _CLOSING:
            attach = True
        out.append(text if attach else " " + text)
        glue = text in _OPENING
    return "".join(out).strip()


def sst_sentences(splits: tuple[str, ...] = SPLITS) -> list[list[str]] | None:
    """Token lists of the SST sentences of ``splits``, or None when the files are absent."""
    from textlrp.sst import load_sentences

    paths = [SST_DIR / f"{split}.txt" for split in splits]
    if not all(p.is_file() for p in paths):
        return None
    return [tokens for p in paths for tokens, _ in load_sentences(p)]
