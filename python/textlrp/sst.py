"""Readers for the Stanford Sentiment Treebank (PTB tree files) and simple TSV corpora.

The SST files hold one tree a line, every node labelled 0..4, e.g.
``(3 (2 (2 The) (2 Rock)) (4 ...))``. Tokens are kept as written in the file
(PTB escapes such as ``-LRB-``, `````` and ``''``; mixed case), except that the
backslash escapes ``\\/`` and ``\\*`` are undone.

The trees are read with a small parser of our own rather than
``nltk.Tree.fromstring``: it gives the same trees (checked on all three SST
files), is about ten times faster (nltk 3.10 guards its regular expressions
against ReDoS at ~3 ms a tree) and reports the problem and line of a bad tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "SST_CLASS_NAMES",
    "SSTFormatError",
    "load_phrases",
    "load_sentences",
    "load_tsv",
    "read_trees",
]

SST_CLASS_NAMES = ["very negative", "negative", "neutral", "positive", "very positive"]


def _unescape(token: str) -> str:
    # PTB escapes "/" and "*" with a backslash; no text tokenizer produces those,
    # so undo them. Bracket and quote escapes (-LRB-, ``) are kept as written.
    return token.replace("\\/", "/").replace("\\*", "*")


class SSTFormatError(ValueError):
    """A tree or TSV line could not be parsed; the message names file and line."""


def _parse_label(label: str, where: str) -> int:
    if label not in _LABELS:
        if label.lstrip("-").isdigit():
            raise SSTFormatError(f"{where}: node label {label} is outside 0..4")
        raise SSTFormatError(f"{where}: node label {label!r} is not an integer 0..4")
    return _LABELS[label]


_LABELS = {str(k): k for k in range(5)}
# Only ASCII space/tab separate atoms: SST has a token with a no-break space
# inside ("8\u00a01\\/2") that a \\s-based tokenizer would split.
_TOKEN = re.compile(r"\(|\)|[^ \t()]+")


def _parse_line(line: str, where: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Parse one PTB tree: (leaves, nodes) with nodes = (start, end, label) leaf spans in pre-order."""
    leaves: list[str] = []
    nodes: list[tuple[int, int, int]] = []
    # stack entries: [node index, label, start, n_children, has_leaf]
    stack: list[list[int]] = []
    expect_label = False
    done = False
    for tok in _TOKEN.findall(line):
        if done:
            raise SSTFormatError(f"{where}: malformed tree: text after the closing bracket of the root: {tok!r}")
        if expect_label:
            if tok in "()":
                raise SSTFormatError(f"{where}: malformed tree: '(' must be followed by a label, got {tok!r}")
            label = _parse_label(tok, where)
            nodes.append((len(leaves), -1, label))
            stack.append([len(nodes) - 1, label, len(leaves), 0, 0])
            expect_label = False
        elif tok == "(":
            if stack:
                if stack[-1][4]:
                    raise SSTFormatError(f"{where}: a leaf node must hold exactly one token (node {stack[-1][1]})")
                stack[-1][3] += 1
            elif nodes:
                raise SSTFormatError(f"{where}: malformed tree: more than one tree on the line")
            expect_label = True
        elif tok == ")":
            if not stack:
                raise SSTFormatError(f"{where}: malformed tree: unbalanced ')'")
            index, label, start, n_children, _ = stack.pop()
            if n_children == 0:
                raise SSTFormatError(f"{where}: malformed tree: node ({label}) has no children")
            nodes[index] = (start, len(leaves), label)
            done = not stack
        else:
            if not stack:
                raise SSTFormatError(f"{where}: malformed tree: token {tok!r} outside brackets")
            if stack[-1][3]:
                raise SSTFormatError(f"{where}: a leaf node must hold exactly one token (node {stack[-1][1]})")
            stack[-1][3] += 1
            stack[-1][4] = 1
            leaves.append(_unescape(tok))
    if stack or expect_label:
        raise SSTFormatError(f"{where}: malformed tree: unbalanced '(' (line ends inside a node)")
    return leaves, nodes


def read_trees(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str], list[tuple[int, int, int]]]]:
    """Yield (line_number, leaves, nodes) for each non-empty line of a PTB tree file.

    ``nodes`` lists every labelled node in pre-order (root first) as
    ``(start, end, label)``: the node covers ``leaves[start:end]``.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}, line {lineno}"
            if not line.startswith("("):
                raise SSTFormatError(f"{where}: expected a tree starting with '(', got {line[:40]!r}")
            leaves, nodes = _parse_line(line, where)
            yield lineno, leaves, nodes


def load_sentences(path: str | os.PathLike[str]) -> list[tuple[list[str], int]]:
    """Sentences with their root (sentence) labels, in file order."""
    return [(leaves, nodes[0][2]) for _, leaves, nodes in read_trees(path)]


def load_phrases(path: str | os.PathLike[str]) -> list[tuple[list[str], int]]:
    """All labelled subtrees (including the roots) as (tokens, label), deduplicated.

    Order is deterministic: first occurrence in file order, each tree visited in
    pre-order (root first). A phrase appearing with two different labels is kept
    once per label.
    """
    seen: set[tuple[tuple[str, ...], int]] = set()
    out: list[tuple[list[str], int]] = []
    for _, leaves, nodes in read_trees(path):
        for start, end, label in nodes:
            key = (tuple(leaves[start:end]), label)
            if key not in seen:
                seen.add(key)
                out.append((leaves[start:end], label))
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
