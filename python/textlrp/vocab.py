"""The vocabulary of a token model and the tokenizer settings it was trained with, in one
object: what turns a text into token ids (and back) for :class:`textlrp.Model`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .tokenize import tokenize as _tokenize


class Vocabulary:
    """Tokens by id, the unknown-word token and the tokenizer settings (``lowercase``).

    ``tokenize(text)`` splits a text the way the model's training data was split (the Stanford
    Sentiment Treebank's tokenizer, lowercased if ``lowercase``); ``lookup(tokens)`` maps
    tokens to (ids, out-of-vocabulary flags), unknown words to ``unk_token``'s id.
    """

    def __init__(self, tokens: Sequence[str], *, unk_token: str | None = None,
                 lowercase: bool = False) -> None:
        self.tokens = [str(w) for w in tokens]
        self.index = {w: i for i, w in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary entries must be unique")
        if unk_token is not None and unk_token not in self.index:
            raise ValueError(f"unk_token {unk_token!r} is not in the vocabulary")
        self.unk_token = unk_token
        self.unk_id = -1 if unk_token is None else self.index[unk_token]
        self.lowercase = bool(lowercase)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return (f"<textlrp.Vocabulary {len(self)} tokens, unk_token={self.unk_token!r}, "
                f"lowercase={self.lowercase}>")

    def tokenize(self, text: str) -> list[str]:
        return _tokenize(text, lowercase=self.lowercase)

    def normalise(self, tokens: Sequence[str]) -> list[str]:
        """Given tokens as the vocabulary spells them (lowercased if it is)."""
        return [t.lower() for t in tokens] if self.lowercase else list(tokens)

    def lookup(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, oov flags); ValueError for an unknown token without an unknown-word token."""
        found = list(map(self.index.get, tokens))  # once per corpus line: the plain case first
        if None not in found:
            return np.array(found, dtype=np.int64), np.zeros(len(found), dtype=bool)
        ids = np.empty(len(tokens), dtype=np.int64)
        oov = np.zeros(len(tokens), dtype=bool)
        index, unk = self.index, self.unk_id
        for t, tok in enumerate(tokens):
            i = index.get(tok, -1)
            if i < 0:
                if unk < 0:
                    raise ValueError(
                        f"token {tok!r} is not in the vocabulary and the model has no unknown token"
                    )
                i = unk
                oov[t] = True
            ids[t] = i
        return ids, oov

    def decode(self, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(tokens, oov flags) of ids already checked to be in range."""
        tokens = [self.tokens[i] for i in ids]
        return tokens, (ids == self.unk_id) if self.unk_id >= 0 else np.zeros(len(ids), bool)


def tokens_from_mapping(vocab: Mapping[str, int], size: int) -> list[str]:
    """Tokens by id from a dict token -> id that covers 0..size-1 exactly once (what the
    importers accept besides a list)."""
    tokens: list[str | None] = [None] * size
    for tok, idx in vocab.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not 0 <= idx < size:
            raise ValueError(f"vocab maps {tok!r} to {idx!r}, outside 0..{size - 1}")
        if tokens[idx] is not None:
            raise ValueError(f"vocab maps both {tokens[idx]!r} and {tok!r} to id {idx}")
        tokens[idx] = str(tok)
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        raise ValueError(f"vocab dict has no token for ids {missing[:10]}"
                         f"{' ...' if len(missing) > 10 else ''}")
    return [t for t in tokens if t is not None]
