"""textlrp.nn.AdditiveAttention: the spec's attention pooling as a torch module."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import reference as ref
from conftest import make_random_spec


def test_import_textlrp_does_not_import_torch_or_nn():
    code = ("import sys, textlrp\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'textlrp.nn' not in sys.modules, 'textlrp.nn imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_matches_the_spec_attention(torch):
    """W = proj.weight, b = proj.bias, v = score.weight[0]: the reference's pooling."""
    from textlrp.nn import AdditiveAttention

    rng = np.random.default_rng(20)
    spec = make_random_spec(rng, cell="gru", layers=[(3, True)], pooling="attention",
                            attention_size=4)
    att = AdditiveAttention(6, 4).double()
    with torch.no_grad():
        att.proj.weight.copy_(torch.tensor(spec.attention.W))
        att.proj.bias.copy_(torch.tensor(spec.attention.b))
        att.score.weight[0].copy_(torch.tensor(spec.attention.v))
    for T in (1, 4, 33):
        y = rng.standard_normal((T, 6)) * 3
        f, P = ref.pool(spec, y)
        context, alpha = att(torch.tensor(y)[None])
        np.testing.assert_allclose(context[0].detach().numpy(), f, rtol=0, atol=1e-13)
        np.testing.assert_allclose(alpha[0].detach().numpy(), P["alpha"], rtol=0, atol=1e-15)


def test_padding_by_lengths_or_mask(torch):
    from textlrp.nn import AdditiveAttention

    torch.manual_seed(0)
    att = AdditiveAttention(5, 3).double()
    h = torch.randn(3, 6, 5, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    c_len, a_len = att(h, lengths=lengths)
    mask = torch.arange(6)[None, :] < lengths[:, None]
    c_mask, a_mask = att(h, mask=mask)
    assert torch.equal(c_len, c_mask) and torch.equal(a_len, a_mask)
    for n, T in enumerate(lengths.tolist()):
        assert a_len[n, T:].abs().sum() == 0  # padding gets no weight
        c_one, a_one = att(h[n:n + 1, :T])
        torch.testing.assert_close(c_len[n], c_one[0], rtol=0, atol=1e-14)
        torch.testing.assert_close(a_len[n, :T], a_one[0], rtol=0, atol=1e-15)


def test_bad_input(torch):
    from textlrp.nn import AdditiveAttention

    att = AdditiveAttention(4, 2)
    h = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="shape"):
        att(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="shape"):
        att(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="empty"):
        att(torch.zeros(2, 0, 4))
    with pytest.raises(ValueError, match="not both"):
        att(h, mask=torch.ones(2, 3, dtype=torch.bool), lengths=torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="at least one"):
        att(h, lengths=torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="at most"):
        att(h, lengths=torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        att(h, lengths=torch.tensor([3]))
    with pytest.raises(ValueError, match="bool"):
        att(h, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="positive integer"):
        AdditiveAttention(0, 2)
    with pytest.raises(ValueError, match="positive integer"):
        AdditiveAttention(4, 2.0)
