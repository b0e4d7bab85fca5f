"""Every kernel copy (generic, avx2, avx512) against the reference.

The engine picks one copy per process (the widest the CPU has, or TEXTLRP_ISA), so the other
copies only run in a subprocess with TEXTLRP_ISA set; the copy a user gets depends on their CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from conftest import assert_close, make_random_model, random_sentences

TESTS = Path(__file__).resolve().parent
CASES = {  # name: (e, layers, head)
    "wide": (60, [(60, True)], [(None, True)]),
    "odd": (13, [(7, True), (5, False)], [(6, True), (None, False)]),
}
RULES = ref.RULES

CHILD = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import textlrp, textlrp._core
from conftest import make_random_model, random_sentences
from test_engine_isa import CASES, RULES, case_inputs
out = {"isa": np.array(textlrp._core.isa())}
for name in CASES:
    m, batch, deleted = case_inputs(name)
    model = textlrp.from_arrays(m["embedding"], m["lstm_layers"], m["head"])
    for rule in RULES:
        for k, e in enumerate(model.explain_batch(batch, rule=rule, bias_factor=1.0,
                                                  deleted=deleted, threads=2)):
            out[f"{name}/lrp/{rule}/{k}"] = e.embedding_relevance
            out[f"{name}/rest/{rule}/{k}"] = np.array(e.rest)
    for k, e in enumerate(model.explain_batch(batch, method="sa", deleted=deleted, threads=2)):
        out[f"{name}/grad/{k}"] = e.embedding_relevance
    for k, e in enumerate(model.explain_batch(batch, method="occlusion", deleted=deleted)):
        out[f"{name}/occlusion/{k}"] = e.relevance
np.savez(sys.argv[2], **out)
"""


def case_inputs(name):
    e, layers, head = CASES[name]
    rng = np.random.default_rng(len(name) * 1000 + e)
    m = make_random_model(rng, e=e, layers=layers, head=head, V=80, C=4, scale=0.2)
    batch = random_sentences(rng, 10, 80, 1, 12)
    deleted = [[0] if n % 4 == 0 else [] for n in range(len(batch))]
    return m, batch, deleted


@pytest.fixture(scope="module")
def references():
    out = {}
    for name in CASES:
        m, batch, deleted = case_inputs(name)
        for k, (ids, dl) in enumerate(zip(batch, deleted)):
            for rule in RULES:
                _, emb, rest = ref.lrp(m, ids, bias_factor=1.0, rule=rule, deleted=dl)
                out[f"{name}/lrp/{rule}/{k}"] = emb
                out[f"{name}/rest/{rule}/{k}"] = rest
            out[f"{name}/grad/{k}"] = ref.gradient(m, ids, deleted=dl)
            out[f"{name}/occlusion/{k}"] = ref.occlusion(m, ids, deleted=dl)
    return out


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_kernel_copy_matches_reference(isa, references, tmp_path):
    pytest.importorskip("textlrp._core")
    path = tmp_path / "out.npz"
    env = dict(os.environ, TEXTLRP_ISA=isa)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(TESTS), str(path)], env=env,
                          check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with np.load(path) as got:
        if str(got["isa"]) != isa:
            pytest.skip(f"this CPU cannot run the {isa} kernels (got {got['isa']})")
        assert set(got.files) - {"isa"} == set(references)
        for key, want in references.items():
            if "/rest/" in key:
                scale = max(1.0, np.abs(references[key.replace("/rest/", "/lrp/")]).max())
                assert abs(float(got[key]) - want) <= 1e-10 * scale, (isa, key)
            else:
                assert_close(got[key], want, what=f"{isa} {key}")
