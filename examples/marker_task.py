"""A task whose right explanation is known: does LRP find the one token that decides?

Sequences of 8-30 random filler tokens; a sequence of class "A" carries the marker token "A"
once at a random position, class "B" the marker "B", class "none" neither. A bidirectional
GRU with additive attention is trained on it in PyTorch (a few seconds on a CPU), imported with
``textlrp.from_torch`` and explained; LRP should put the largest relevance on the marker.

The continuous twin: sequences of 3-feature vectors of noise with one spike (+4 on feature 0)
at a random position in class "spike", none in class "flat"; an LSTM with max pooling.

    python examples/marker_task.py          # trains both, prints how often LRP hits the marker

Needs torch (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import numpy as np

VOCAB = ["<pad>", "A", "B"] + [f"w{k}" for k in range(17)]
CLASSES = ["none", "A", "B"]


def make_tokens(rng, n, T=None):
    """(list of id arrays, labels): a marker at a random position, or none. Lengths 8-30, or
    all T (a training batch needs no padding then)."""
    xs, ys = [], []
    for _ in range(n):
        length = int(rng.integers(8, 31)) if T is None else T
        x = rng.integers(3, len(VOCAB), length)
        y = int(rng.integers(0, 3))
        if y:
            x[int(rng.integers(length))] = y  # id 1 = "A", id 2 = "B"
        xs.append(x)
        ys.append(y)
    return xs, np.array(ys)


def make_spikes(rng, n, T=None):
    xs, ys = [], []
    for _ in range(n):
        length = int(rng.integers(8, 31)) if T is None else T
        x = rng.standard_normal((length, 3)) * 0.5
        y = int(rng.integers(0, 2))
        if y:
            x[int(rng.integers(length)), 0] += 4.0
        xs.append(x)
        ys.append(y)
    return xs, np.array(ys)


def _train(torch, modules, forward, make, steps, seed):
    """Adam on fresh batches of 64 equal-length sequences (no padding needed)."""
    torch.manual_seed(seed)
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        xs, ys = make(rng, 64, int(rng.integers(8, 31)))
        loss = torch.nn.functional.cross_entropy(forward(np.stack(xs)), torch.as_tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()


def train_marker_model(seed=0, steps=150):
    """A trained textlrp Model (GRU + attention) for the token task."""
    import torch
    from torch import nn

    from textlrp import from_torch
    from textlrp.nn import AdditiveAttention

    torch.manual_seed(seed)
    emb = nn.Embedding(len(VOCAB), 8)
    gru = nn.GRU(8, 12, bidirectional=True, batch_first=True)
    att = AdditiveAttention(24, 8)
    head = nn.Linear(24, 3)

    def forward(x):  # x [B, T] ids
        y, _ = gru(emb(torch.as_tensor(x)))
        context, _ = att(y)
        return head(context)

    _train(torch, (emb, gru, att, head), forward, make_tokens, steps, seed)
    return from_torch(emb, gru, head, pooling=att, vocab=VOCAB, class_names=CLASSES)


def train_spike_model(seed=0, steps=150):
    """A trained textlrp Model (LSTM + max pooling, continuous inputs) for the spike task."""
    import torch
    from torch import nn

    from textlrp import from_torch

    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 10, batch_first=True)
    head = nn.Linear(10, 2)

    def forward(x):  # x [B, T, 3]
        y, _ = lstm(torch.as_tensor(x, dtype=torch.float32))
        return head(y.max(1).values)

    _train(torch, (lstm, head), forward, make_spikes, steps, seed)
    return from_torch(None, lstm, head, pooling="max", class_names=["flat", "spike"])


def marker_hits(model, xs, ys, marker_of):
    """(accuracy, share of correctly classified marked inputs whose most relevant position is
    the marker)."""
    exps = model.explain_batch(xs)
    correct = [e.prediction == y for e, y in zip(exps, ys)]
    hits = [int(np.argmax(e.relevance)) == marker_of(x)
            for e, x, y, ok in zip(exps, xs, ys, correct) if ok and y]
    return float(np.mean(correct)), float(np.mean(hits))


def main():
    rng = np.random.default_rng(123)
    model = train_marker_model()
    xs, ys = make_tokens(rng, 500)
    acc, hit = marker_hits(model, xs, ys, lambda x: int(np.flatnonzero(x <= 2)[0]))
    print(f"tokens, {model!r}\n  test accuracy {acc:.3f}; LRP's top token is the marker in "
          f"{hit:.1%} of the correctly classified marked sequences")
    e = model.explain([VOCAB[i] for i in xs[int(np.flatnonzero(ys == 1)[0])]])
    print("  " + " ".join(f"{t}({r:+.2f})" for t, r in zip(e.tokens, e.relevance)))

    spike = train_spike_model()
    xs, ys = make_spikes(rng, 500)
    acc, hit = marker_hits(spike, xs, ys, lambda x: int(np.argmax(x[:, 0])))
    print(f"spikes, {spike!r}\n  test accuracy {acc:.3f}; LRP's top step is the spike in "
          f"{hit:.1%} of the correctly classified spiked sequences")


if __name__ == "__main__":
    main()
