"""What the Dask path costs against the local path, on the same corpus in the same run.

    python benchmarks/bench_dask.py [--lines 20000] [--workers 2] [--partition-lines 2500]

Corpus: SST sentences as typed text (../shared/data/sst), repeated to --lines, else
generated from the model's vocabulary. Model: the bundled SST-5 BiLSTM. LRP, float64.

Rows (lines/s; ratio = rate / the local rate of the same kind):
- API local: ``model.explain_corpus(texts, threads=all cores)`` and ``to_dict()`` per result,
  in this process.
- API dask: ``textlrp.dask.explain(bag).compute()`` on a LocalCluster of --workers processes
  with 1 thread each (one bag partition per --partition-lines texts); "first" includes
  shipping and loading the model on each worker, "again" reuses the workers' cached model.
  ``compute()`` brings every record to the client (through one worker, which concatenates
  the partitions); ``.map(json.dumps).to_textfiles()`` keeps them on the workers and is
  compared with the local loop that writes the same JSON lines to a file.
- CLI local: ``textlrp explain --input F --output F.jsonl --quiet`` (a fresh process).
- CLI dask: ``textlrp explain --input F --dask ADDRESS --output-dir D --quiet`` against the
  same running cluster (a fresh client process; the cluster's start is not counted), and
  ``--dask local:N``, which starts and stops its own cluster (counted).
CPU s: CPU seconds of this process (which runs the LocalCluster's scheduler), of the CLI
child processes and of the worker processes (not those of ``--dask local:N``'s own cluster).
Also printed: the pickled size of one partition task and of the model key of the graph.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # detok: SST sentences as a user would type them


def corpus(n: int) -> tuple[list[str], str]:
    import textlrp

    try:
        from detok import detokenize, sst_sentences

        tokens = sst_sentences()
    except ImportError:
        tokens = None
    if tokens is not None:
        sentences, source = [detokenize(t) for t in tokens], "SST sentences"
    else:
        rng = np.random.default_rng(0)
        vocab = [w for w in textlrp.load_model().vocab if w.isalpha()]
        sentences = [" ".join(rng.choice(vocab, size=int(rng.integers(3, 40))))
                     for _ in range(5000)]
        source = "generated sentences"
    return [sentences[k % len(sentences)] for k in range(n)], source


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _worker_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu(client: Any = None) -> float:
    """CPU seconds so far of this process (the LocalCluster's scheduler runs here), of its
    finished children (the CLI runs) and of the cluster's worker processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    if client is not None:
        total += sum(client.run(_worker_cpu).values())
    return total


class Timer:
    """Wall-clock and CPU seconds of a block (CPU: see cpu())."""

    def __init__(self, client: Any = None) -> None:
        self.client = client

    def __enter__(self) -> Timer:  # noqa: PYI034 (Python 3.9 has no typing.Self)
        self.cpu0, self.t0 = cpu(self.client), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = cpu(self.client) - self.cpu0


def cli(*args: str) -> None:
    exe = Path(sys.executable).parent / "textlrp"
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "textlrp"]
    subprocess.run([*command, *args, "--quiet"], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partition-lines", type=int, default=2500)
    a = ap.parse_args()

    import textlrp

    texts, source = corpus(a.lines)
    n = len(texts)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"corpus: {n} lines ({source}); {cores} cores; LocalCluster of {a.workers} worker "
          f"processes x 1 thread; {a.partition_lines} lines per partition")
    rows: list[tuple[str, Timer, str]] = []

    model = textlrp.load_model()
    with Timer() as t:
        local = [r.to_dict() for r in model.explain_corpus(texts, keep_embedding=False)]
    rows.append(("API local   explain_corpus + to_dict", t, "api"))
    with tempfile.TemporaryDirectory() as tmp, Timer() as t, \
            open(Path(tmp, "local.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(dumps(r.to_dict()) + "\n"
                     for r in model.explain_corpus(texts, keep_embedding=False))
    rows.append(("API local   ... + json to a file", t, "file"))

    with tempfile.TemporaryDirectory() as tmp:
        run_with_cluster(a, texts, local, Path(tmp), rows)
        # The same corpus with a cluster the command starts and stops itself.
        with Timer() as t:  # its workers are grandchildren: their CPU time is not counted
            cli("explain", "--input", str(Path(tmp, "corpus.txt")), "--partition-lines",
                str(a.partition_lines), "--dask", f"local:{a.workers}", "--output-dir",
                str(Path(tmp, "out2")))
        rows.append((f"CLI dask    --dask local:{a.workers} (starts its cluster)", t, "cli"))
    report(rows, n)


def run_with_cluster(a: argparse.Namespace, texts: list[str], local: list[dict], tmp: Path,
                     rows: list[tuple[str, Timer, str]]) -> None:
    import cloudpickle
    import dask.bag as db
    from distributed import Client, LocalCluster

    import textlrp.dask

    n = len(texts)
    with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        npart = max(1, -(-n // a.partition_lines))
        lazy = textlrp.dask.explain(db.from_sequence(texts, npartitions=npart))
        graph = dict(lazy.__dask_graph__())
        sizes = {str(k): len(cloudpickle.dumps(v)) for k, v in graph.items()}
        task = max(s for k, s in sizes.items() if "_bag_partition" in k)
        shipped = max(s for k, s in sizes.items() if k.startswith("textlrp-model-"))
        for label in ("first", "again"):
            with Timer(client) as t:
                records = lazy.compute()
            rows.append((f"API dask    bag.compute ({label})", t, "api"))
            assert records == local, "the Dask records differ from the local ones"
        with Timer(client) as t:  # the records stay on the workers, as in real use
            lazy.map(dumps).to_textfiles(str(tmp / "bag" / "*.jsonl"))
        rows.append(("API dask    ... .map(json).to_textfiles", t, "file"))

        src = tmp / "corpus.txt"
        src.write_text("\n".join(texts) + "\n", encoding="utf-8")
        with Timer() as t:
            cli("explain", "--input", str(src), "--output", str(tmp / "local.jsonl"))
        rows.append(("CLI local   --input --output", t, "cli"))
        common = ["explain", "--input", str(src), "--partition-lines", str(a.partition_lines)]
        with Timer(client) as t:
            cli(*common, "--dask", cluster.scheduler_address, "--output-dir", str(tmp / "out1"))
        rows.append(("CLI dask    --dask ADDRESS (running cluster)", t, "cli"))
    print(f"graph: one partition task {task} bytes pickled; the model key {shipped} bytes "
          f"(once per graph, once per worker)")


def report(rows: list[tuple[str, Timer, str]], n: int) -> None:
    """lines/s (wall clock) and CPU seconds, each against the local row of the same kind.
    On a shared machine the wall clock varies with the other jobs; CPU seconds much less."""
    base = {kind: t for label, t, kind in rows if "local " in label}
    print(f"{'path':<52} {'seconds':>8} {'lines/s':>8} {'vs local':>9} {'CPU s':>7} "
          f"{'vs local':>9}")
    for label, t, kind in rows:
        print(f"{label:<52} {t.wall:8.2f} {n / t.wall:8.0f} {base[kind].wall / t.wall:9.2f} "
              f"{t.cpu:7.1f} {t.cpu / base[kind].cpu:9.2f}")


if __name__ == "__main__":
    main()
