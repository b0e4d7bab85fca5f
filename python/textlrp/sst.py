"""Readers for the Stanford Sentiment Treebank (PTB tree files) and simple TSV corpora.

The SST files hold one tree a line, every node labelled 0..4, e.g.
``(3 (2 (2 The) (2 Rock)) (4 ...))``. Tokens are kept exactly as written in the
file (PTB escapes such as ``-LRB-``, `````` and ``''``; mixed case).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

__all__ = [
    "SST_CLASS_NAMES",
    "SSTFormatError",
    "load_phrases",
    "load_sentences",
    "load_tsv",
    "read_trees",
]

SST_CLASS_NAMES = ["very negative", "negative", "neutral", "positive", "very positive"]


# Only ASCII space/tab separate atoms: SST has a token with a no-break space
# inside ("8\u00a01\\/2"), which nltk's default \s-based pattern would split.
_ATOM = r"[^ \t()]+"


def _unescape(token: str) -> str:
    # PTB escapes "/" and "*" with a backslash; no text tokenizer produces those,
    # so undo them. Bracket and quote escapes (-LRB-, ``) are kept as written.
    return token.replace("\\/", "/").replace("\\*", "*")


class SSTFormatError(ValueError):
    """A tree or TSV line could not be parsed; the message names file and line."""


def _parse_label(label: object, where: str) -> int:
    try:
        value = int(str(label))
    except ValueError:
        raise SSTFormatError(f"{where}: node label {label!r} is not an integer 0..4") from None
    if not 0 <= value <= 4:
        raise SSTFormatError(f"{where}: node label {value} is outside 0..4")
    return value


def read_trees(path: str | os.PathLike[str]) -> Iterator[tuple[int, "object"]]:
    """Yield (line_number, nltk.Tree) for each non-empty line of a PTB tree file."""
    from nltk import Tree

    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}, line {lineno}"
            if not line.startswith("("):
                raise SSTFormatError(f"{where}: expected a tree starting with '(', got {line[:40]!r}")
            try:
                tree = Tree.fromstring(line, node_pattern=_ATOM, leaf_pattern=_ATOM)
            except ValueError as exc:
                raise SSTFormatError(f"{where}: malformed tree: {exc}") from None
            # Validate every node: a label, and leaves only directly under a node.
            for sub in tree.subtrees():
                _parse_label(sub.label(), where)
                if len(sub) == 0:
                    raise SSTFormatError(f"{where}: node ({sub.label()}) has no children")
                if any(not isinstance(child, Tree) for child in sub) and len(sub) != 1:
                    raise SSTFormatError(f"{where}: a leaf node must hold exactly one token: {sub}")
            for pos in tree.treepositions("leaves"):
                tree[pos] = _unescape(tree[pos])
            yield lineno, tree


def load_sentences(path: str | os.PathLike[str]) -> list[tuple[list[str], int]]:
    """Sentences with their root (sentence) labels, in file order."""
    return [(list(tree.leaves()), _parse_label(tree.label(), "")) for _, tree in read_trees(path)]


def load_phrases(path: str | os.PathLike[str]) -> list[tuple[list[str], int]]:
    """All labelled subtrees (including the roots) as (tokens, label), deduplicated.

    Order is deterministic: first occurrence in file order, each tree visited in
    pre-order (root first). A phrase appearing with two different labels is kept
    once per label.
    """
    seen: set[tuple[tuple[str, ...], int]] = set()
    out: list[tuple[list[str], int]] = []
    for _, tree in read_trees(path):
        for sub in tree.subtrees():
            key = (tuple(sub.leaves()), int(sub.label()))
            if key not in seen:
                seen.add(key)
                out.append((list(key[0]), key[1]))
    return out


def load_tsv(
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    *,
    tokenize: bool = True,
    lowercase: bool = False,
) -> list[tuple[list[str], int]]:
    """Read ``label<TAB>text`` lines. The label is a class index or a class name.

    Text is tokenised with :func:`textlrp.tokenize` (SST conventions) unless
    ``tokenize=False``, in which case it is split on whitespace. Empty lines
    are skipped; lines starting with ``#`` are comments.
    """
    from .tokenize import tokenize as _tokenize

    names = list(class_names) if class_names is not None else list(SST_CLASS_NAMES)
    path = Path(path)
    out: list[tuple[list[str], int]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path}, line {lineno}"
            if "\t" not in line:
                raise SSTFormatError(f"{where}: expected 'label<TAB>text'")
            label_text, text = line.split("\t", 1)
            label_text = label_text.strip()
            if label_text in names:
                label = names.index(label_text)
            else:
                try:
                    label = int(label_text)
                except ValueError:
                    raise SSTFormatError(
                        f"{where}: unknown label {label_text!r}; expected 0..{len(names) - 1} or one of {names}"
                    ) from None
                if not 0 <= label < len(names):
                    raise SSTFormatError(f"{where}: label {label} is outside 0..{len(names) - 1}")
            try:
                if tokenize:
                    tokens = _tokenize(text, lowercase=lowercase)
                else:
                    tokens = [t.lower() for t in text.split()] if lowercase else text.split()
            except ValueError:
                raise SSTFormatError(f"{where}: empty text") from None
            if not tokens:
                raise SSTFormatError(f"{where}: empty text")
            out.append((tokens, label))
    return out
