"""textlrp.dask and ``textlrp explain --dask``: corpora on a Dask cluster.

One module-scoped ``distributed.LocalCluster`` of 2 worker processes (1 thread each; the
machine has 2 cores) serves every test that needs a cluster. The reference is always a local
run on the same input: the local CLI's JSON Lines (``textlrp explain --input``), which are
``Explanation.to_dict()`` plus ``line``; Dask results must equal them bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from conftest import SST_DIR, assert_one_line_error, run_textlrp, textlrp_script

import textlrp
from textlrp import cli

HAVE_DASK = find_spec("distributed") is not None and find_spec("dask") is not None
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="needs textlrp[dask] (dask, distributed)")

N_LINES = 20_000
PART_LINES = 1000


# --------------------------------------------------------------------------- corpus


def _sentences() -> tuple[list[str], str]:
    """SST sentences as typed text, else generated sentences from the model's vocabulary."""
    from detok import detokenize, sst_sentences

    tokens = sst_sentences()
    if tokens is not None:
        return [detokenize(t) for t in tokens], f"SST sentences from {SST_DIR}"
    rng = np.random.default_rng(0)
    vocab = [w for w in textlrp.load_model().vocab if w.isalpha()]
    return [" ".join(rng.choice(vocab, size=int(rng.integers(3, 40)))) for _ in range(5000)], \
        f"generated text (no SST data at {SST_DIR})"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """N_LINES lines in two files (12,000 + 8,000), with an empty line, a blank line, bytes
    that are not UTF-8 and a last line without newline, and the local CLI's output of each."""
    sentences, source = _sentences()
    print(f"corpus: {source}")
    lines = [sentences[k % len(sentences)].encode() for k in range(N_LINES)]
    lines[5], lines[777], lines[15_000] = b"", b"   ", b"caf\xe9 \xff bad bytes"
    root = tmp_path_factory.mktemp("corpus")
    files = [root / "a.txt", root / "b.txt"]
    files[0].write_bytes(b"\n".join(lines[:12_000]) + b"\n")
    files[1].write_bytes(b"\n".join(lines[12_000:]))  # no final newline
    local = {}
    for f in files:
        out = root / f"{f.stem}.local.jsonl"
        proc = run_textlrp("explain", "--input", str(f), "--output", str(out), "--quiet",
                           timeout=600)
        assert proc.returncode == 0, proc.stderr
        local[f.name] = out.read_bytes()
    texts = [ln.decode("utf-8", "replace") for ln in lines]
    return {"files": files, "local": local, "texts": texts}


def _local_records(corpus) -> list[dict]:
    """The local CLI's records of both files without their line numbers, in input order."""
    records = []
    for name in ("a.txt", "b.txt"):
        for line in corpus["local"][name].decode().splitlines():
            r = json.loads(line)
            del r["line"]
            records.append(r)
    return records


# --------------------------------------------------------------------------- cluster


@pytest.fixture(scope="module")
def cluster():
    if not HAVE_DASK:
        pytest.skip("needs textlrp[dask] (dask, distributed)")
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    class TaskLog(SchedulerPlugin):
        """Every task key the scheduler has seen (a transition of any kind)."""

        name = "textlrp-test-task-log"

        def __init__(self) -> None:
            self.keys: set[str] = set()

        def transition(self, key, start, finish, *args, **kwargs) -> None:
            self.keys.add(str(key))

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0") as lc, Client(lc) as client:
        log = TaskLog()
        lc.scheduler.add_plugin(log)  # the scheduler of a LocalCluster runs in this process
        yield {"cluster": lc, "client": client, "address": lc.scheduler_address, "log": log}


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def _loads(client) -> dict[str, dict[str, int]]:
    def loads():
        import textlrp.dask

        return dict(textlrp.dask._LOADS)
    return client.run(loads)


# --------------------------------------------------------------------------- import and usage


def test_importing_textlrp_and_building_the_cli_never_imports_dask():
    code = ("import sys, textlrp, textlrp.cli, textlrp.dask; textlrp.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'pandas', 'pyarrow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv, fragment", [
    (["--input", "x.txt", "--output-dir", "out"], "--output-dir goes with --dask"),
    (["--input", "x.txt", "--dask", "local"], "give --output-dir DIR"),
    (["--dask", "local", "--output-dir", "out"], "give --input"),
    (["some", "text", "--input", "x.txt", "--dask", "local", "--output-dir", "o"], "not both"),
    (["--input", "x.txt", "--dask", "local", "--output-dir", "o", "--output", "f.jsonl"],
     "not --output"),
    (["--input", "x.txt", "--dask", "local", "--output-dir", "o", "--format", "html"],
     "JSON Lines"),
    (["--input", "x.txt", "--dask", "local", "--output-dir", "o", "--column", "2"],
     "--column is not available"),
    (["--input", "-", "--dask", "local", "--output-dir", "o"], "cannot read stdin"),
    (["--input", "x.txt", "--dask", "local:0", "--output-dir", "o"], "positive number"),
    (["--input", "nothing-*.txt", "--dask", "local", "--output-dir", "o"], "no input file"),
    (["--input", "x.txt", "--dask", "local", "--output-dir", "o", "--partition-lines", "0"],
     "positive integer"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["explain", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("textlrp: error: ") and fragment in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "out").exists()


@needs_dask
def test_without_dask_the_option_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    (tmp_path / "x.txt").write_text("good\n")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    code = cli.main(["explain", "--input", str(tmp_path / "x.txt"), "--dask", "local",
                     "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'textlrp[dask]'" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- partition plan


@pytest.mark.parametrize("content", [
    b"", b"one", b"one\n", b"a\nb\nc", b"a\nb\nc\n", b"\n\n\n", b"a\r\nb\r\n\r\nc",
    b"\xef\xbb\xbfbom\nx\n", b"line\n" * 2500 + b"tail",
], ids=lambda c: f"{len(c)}B-{c[:12]!r}")
@pytest.mark.parametrize("lines", [1, 2, 3, 1000])
def test_partitions_cover_every_line_once(content, lines, tmp_path):
    from textlrp.dask import _plan

    path = tmp_path / "f.txt"
    path.write_bytes(content)
    parts = _plan([str(path)], lines)
    expected = content.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    got, first = [], 1
    for k, p in enumerate(parts):
        assert p.index == k and p.first == first and 1 <= p.n <= lines
        chunk = content[p.start:p.end].split(b"\n")
        if chunk[-1] == b"":
            chunk.pop()
        assert len(chunk) == p.n
        got += chunk
        first += p.n
    assert got == expected
    assert len({p.name for p in parts}) == len(parts)


def test_partition_files_are_named_by_index_and_input_file(tmp_path):
    from textlrp.dask import _plan

    (tmp_path / "a b.txt").write_text("x\n" * 5)
    (tmp_path / "c.txt").write_text("y\n" * 2)
    names = [p.name for p in _plan([str(tmp_path / "a b.txt"), str(tmp_path / "c.txt")], 2)]
    assert names == ["00000-a_b.txt-lines-1-2.jsonl", "00001-a_b.txt-lines-3-4.jsonl",
                     "00002-a_b.txt-lines-5-5.jsonl", "00003-c.txt-lines-1-2.jsonl"]


# --------------------------------------------------------------------------- the API


@needs_dask
def test_bag_of_20000_lines_equals_the_local_run_across_two_workers(cluster, corpus):
    import dask.bag as db

    import textlrp.dask

    client = cluster["client"]
    bag = db.from_sequence(corpus["texts"], npartitions=16)
    lazy = textlrp.dask.explain(bag, model=None)
    t0 = time.perf_counter()
    records = lazy.compute()
    print(f"{len(records)} lines on 2 workers in {time.perf_counter() - t0:.1f} s")
    local = _local_records(corpus)
    assert len(records) == len(local) == N_LINES
    assert [k for k, r in enumerate(local) if "error" in r] == [5, 777, 15_000]
    # empty and blank lines are errors of both; the bag holds line 15,000 decoded with U+FFFD
    assert [k for k, r in enumerate(records) if "error" in r] == [5, 777]
    assert [k for k, (r, ref) in enumerate(zip(records, local))
            if "error" not in ref and r != ref] == []
    # both worker processes did the work, each loading the model exactly once
    loads = _loads(client)
    assert len(loads) == 2 and all(v == {k: 1 for k in v} and len(v) == 1
                                   for v in loads.values()), loads
    assert len(set(_worker_pids(client).values())) == 2


@needs_dask
def test_the_model_is_one_key_of_the_graph_and_loaded_once_per_worker(cluster, tmp_path):
    import cloudpickle
    import dask.bag as db

    import textlrp.dask

    client = cluster["client"]
    model = textlrp.load_model()
    model.metadata["note"] = "a Model object, shipped as its model file"
    texts = ["a gorgeous , witty , seductive movie .", "not good", "bad"] * 200
    lazy = textlrp.dask.explain(db.from_sequence(texts, npartitions=12), model=model)
    graph = dict(lazy.__dask_graph__())
    sizes = {str(k): len(cloudpickle.dumps(v)) for k, v in graph.items()}
    model_keys = [k for k in sizes if k.startswith("textlrp-model-")]
    path = tmp_path / "m.npz"
    model.save(path)
    file_size = path.stat().st_size
    assert len(model_keys) == 1 and sizes[model_keys[0]] >= file_size
    tasks = [s for k, s in sizes.items() if "_bag_partition" in k]
    assert len(tasks) == 12 and max(tasks) < 2000 < file_size // 100, tasks
    print(f"model key {sizes[model_keys[0]]} bytes; each of 12 tasks {max(tasks)} bytes")
    before = _loads(client)
    for _ in range(2):  # computed twice: still one load per worker for this model
        records = lazy.compute()
    assert [r["prediction_name"] for r in records[:3]] == \
        [e.prediction_name for e in model.explain_batch(texts[:3])]
    sha = model_keys[0].removeprefix("textlrp-model-")
    after = _loads(client)
    for worker, counts in after.items():
        assert counts.get(sha, 0) <= 1, (worker, counts)
        assert {k: v for k, v in counts.items() if k != sha} == \
            {k: v for k, v in before.get(worker, {}).items() if k != sha}
    assert sum(c.get(sha, 0) for c in after.values()) >= 1


@needs_dask
def test_a_broken_model_file_fails_on_the_client_before_any_task(cluster, tmp_path, capsys):
    import dask.bag as db

    import textlrp.dask
    from textlrp.io import ModelFileError

    log = cluster["log"]
    good = textlrp.io.default_model_path().read_bytes()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(good[: len(good) // 2])
    bag = db.from_sequence(["good"], npartitions=1)
    seen = set(log.keys)
    with pytest.raises(ModelFileError, match="broken.npz"):
        textlrp.dask.explain(bag, model=broken)
    (tmp_path / "in.txt").write_text("good\nbad\n")
    code = cli.main(["explain", "--input", str(tmp_path / "in.txt"), "--model", str(broken),
                     "--dask", cluster["address"], "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "broken.npz: not a valid textlrp model file" in err
    time.sleep(0.5)
    assert log.keys == seen  # the scheduler saw no task
    assert not (tmp_path / "out").exists()
    assert len(cluster["client"].run(os.getpid)) == 2


@needs_dask
def test_dataframe_column_gives_a_frame_with_the_input_index(cluster):
    import dask.dataframe as dd
    import pandas as pd

    import textlrp.dask

    model = textlrp.load_model()
    texts = ["a gorgeous , witty , seductive movie .", None, "", "not good at all", "bad",
             float("nan")] * 50
    pdf = pd.DataFrame({"id": range(len(texts)), "review": texts},
                       index=pd.RangeIndex(1000, 1000 + len(texts)))
    ddf = dd.from_pandas(pdf, npartitions=4)
    lazy = textlrp.dask.explain(ddf, model=textlrp.io.default_model_path(), column="review",
                                target="positive")
    assert dict(lazy.dtypes.astype(str)) == textlrp.dask.frame_columns()
    frame = lazy.compute()
    assert list(frame.index) == list(pdf.index)
    assert dict(frame.dtypes.astype(str)) == textlrp.dask.frame_columns()
    ok = [k for k, t in enumerate(texts) if isinstance(t, str) and t]
    exps = model.explain_batch([texts[k] for k in ok], target="positive")
    for k, exp in zip(ok, exps):
        row = frame.iloc[k]
        assert row["error"] is None
        assert row["relevance"] == exp.relevance.tolist() and row["tokens"] == exp.tokens
        assert row["prediction"] == exp.prediction and row["target_name"] == "positive"
        assert row["rest"] == exp.rest
    empty = next(model.explain_corpus([""], errors="record")).error  # the API's own message
    for k, t in enumerate(texts):
        if k not in ok:
            row = frame.iloc[k]
            assert row["error"] == ("missing text" if not isinstance(t, str) else empty)
            assert pd.isna(row["prediction"]) and row["tokens"] is None
    # a series works the same; errors="raise" fails the computation instead
    series = textlrp.dask.explain(ddf["review"].dropna(), errors="raise")
    with pytest.raises(ValueError, match=empty.split(":")[0]):
        series.compute()


@needs_dask
def test_api_mistakes_fail_on_the_client(cluster):
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    import textlrp.dask

    bag = db.from_sequence(["good"], npartitions=1)
    with pytest.raises(ValueError, match="unknown method"):
        textlrp.dask.explain(bag, method="magic")
    with pytest.raises(ValueError, match="unknown class"):
        textlrp.dask.explain(bag, target="splendid")
    with pytest.raises(ValueError, match="eps"):
        textlrp.dask.explain(bag, eps=0)
    with pytest.raises(ValueError, match="batch_size"):
        textlrp.dask.explain(bag, batch_size=0)
    with pytest.raises(ValueError, match="errors"):
        textlrp.dask.explain(bag, errors="ignore")
    with pytest.raises(TypeError, match="dask.bag.Bag"):
        textlrp.dask.explain(["a list"])
    with pytest.raises(TypeError, match="model must be"):
        textlrp.dask.explain(bag, model=42)
    ddf = dd.from_pandas(pd.DataFrame({"t": ["good"]}), npartitions=1)
    with pytest.raises(ValueError, match="column=NAME"):
        textlrp.dask.explain(ddf)
    with pytest.raises(KeyError, match="no column 'text'"):
        textlrp.dask.explain(ddf, column="text")


@needs_dask
def test_bag_elements_may_be_records_with_the_text_in_a_column(cluster):
    import dask.bag as db

    import textlrp.dask

    items = [{"review": "good fun"}, {"other": 1}, {"review": 3}]
    records = textlrp.dask.explain(db.from_sequence(items, npartitions=2), column="review",
                                   method="gi").compute()
    assert records[0]["method"] == "gi" and records[0]["tokens"] == ["good", "fun"]
    assert records[1] == {"text": None, "error": "the element has no field 'review' (KeyError)"}
    assert records[2] == {"text": None, "error": "expected a text (str), got int"}


# --------------------------------------------------------------------------- the command line


def _concat(out_dir: Path, name: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out_dir.glob(f"*-{name}-lines-*.jsonl")))


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _start_cli(corpus, out_dir: Path, address: str) -> subprocess.Popen:
    pattern = str(corpus["files"][0].parent / "*.txt")
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTLRP_MODEL", "TEXTLRP_DEBUG")}
    return subprocess.Popen([str(textlrp_script()), "explain", "--input", pattern, "--dask",
                             address, "--output-dir", str(out_dir), "--partition-lines",
                             str(PART_LINES)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@needs_dask
def test_cli_with_a_worker_killed_mid_run_loses_no_partition(cluster, corpus, tmp_path):
    client = cluster["client"]
    out = tmp_path / "out"
    proc = _start_cli(corpus, out, cluster["address"])
    _wait_for(lambda: len(list(out.glob("0*.jsonl"))) >= 2 or proc.poll() is not None, 300,
              "the first partitions")
    victim_address, victim = min(_worker_pids(client).items())
    assert proc.poll() is None, "the run ended before a worker could be killed"
    os.kill(victim, signal.SIGKILL)
    written_before_kill = len(list(out.glob("0*.jsonl")))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert stdout == ""
    parts = sorted(out.glob("0*.jsonl"))
    assert len(parts) == N_LINES // PART_LINES > written_before_kill
    for f in corpus["files"]:  # the union, in partition order, is the local output
        assert _concat(out, f.name) == corpus["local"][f.name]
    assert not list(out.glob(".*.tmp"))
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker
    assert victim not in _worker_pids(client).values()
    print(f"killed worker {victim_address} after {written_before_kill} partitions; {stderr}")


@needs_dask
def test_cli_rerun_after_an_interrupted_run_computes_exactly_the_missing_partitions(
        cluster, corpus, tmp_path):
    out = tmp_path / "out"
    total = N_LINES // PART_LINES
    proc = _start_cli(corpus, out, cluster["address"])
    _wait_for(lambda: len(list(out.glob("0*.jsonl"))) >= 3 or proc.poll() is not None, 300,
              "the first partitions")
    proc.kill()  # the client dies mid-run (e.g. its machine goes away)
    proc.communicate()

    def settled() -> bool:  # tasks running when the client died may still finish: let them
        before = sorted(p.name for p in out.glob("0*.jsonl"))
        time.sleep(1.5)
        return before == sorted(p.name for p in out.glob("0*.jsonl"))
    _wait_for(settled, 120, "the output directory to settle")
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("0*.jsonl")}
    assert 3 <= len(done) < total, len(done)
    (out / ".00000-a.txt-lines-1-1000.jsonl.dead.tmp").write_text("half a parti")

    proc = run_textlrp("explain", "--input", str(corpus["files"][0].parent / "*.txt"),
                       "--dask", cluster["address"], "--output-dir", str(out),
                       "--partition-lines", str(PART_LINES), timeout=600)
    assert proc.returncode == 0, proc.stderr
    missing = total - len(done)
    assert f"in {missing} partitions ({len(done)} already done)" in proc.stderr, proc.stderr
    for name, stat in done.items():  # the partitions already written were not touched
        assert ((out / name).stat().st_ino, (out / name).stat().st_mtime_ns) == stat
    assert len(list(out.glob("0*.jsonl"))) == total and not list(out.glob(".*.tmp"))
    for f in corpus["files"]:
        assert _concat(out, f.name) == corpus["local"][f.name]

    # a third run has nothing to do; other options are refused for this directory
    again = run_textlrp("explain", "--input", str(corpus["files"][0].parent / "*.txt"),
                        "--dask", cluster["address"], "--output-dir", str(out),
                        "--partition-lines", str(PART_LINES))
    assert again.returncode == 0 and f"all {total} partitions are already in" in again.stderr
    other = run_textlrp("explain", "--input", str(corpus["files"][0].parent / "*.txt"),
                        "--dask", cluster["address"], "--output-dir", str(out),
                        "--partition-lines", str(PART_LINES), "--method", "sa")
    assert_one_line_error(other, "holds the output of another run", "explanation options")


@needs_dask
def test_cli_all_classes_and_header_match_the_local_cli(cluster, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"\xef\xbb\xbfreview\nnot good\n\n\xff\nsplendid , witty fun\r\nbad\n")
    out = tmp_path / "out"
    common = ["--all-classes", "--header", "--skip-empty", "--method", "lrp", "--rule", "abs"]
    proc = run_textlrp("explain", "--input", str(src), "--dask", cluster["address"],
                       "--output-dir", str(out), "--partition-lines", "2", "--quiet", *common)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    local = run_textlrp("explain", "--input", str(src), "--format", "json", *common)
    assert local.returncode == 0, local.stderr
    got = b"".join(p.read_bytes() for p in sorted(out.glob("0*.jsonl")))
    assert got.decode() == local.stdout
    assert len(local.stdout.splitlines()) == 1 + 3 * 5  # an error line, 5 classes of 3 lines


def test_threads_do_not_change_the_bytes_of_a_partition(tmp_path):
    """The task function on its own (no cluster): any thread count gives the same file."""
    from textlrp.dask import _Params, _plan, _prepare_model, _write_part

    src = tmp_path / "in.txt"
    src.write_text("\n".join(["a gorgeous , witty , seductive movie .", "not good"] * 300))
    _model, data, shipped = _prepare_model(None)
    part = _plan([str(src)], 10_000)[0]
    outputs = []
    for threads in (1, 2):
        params = _Params((None,), "lrp", "signal-take-all", 1e-3, 0.0, 0, 7, threads)
        d = tmp_path / f"t{threads}"
        d.mkdir()
        assert _write_part(part, data, shipped, params, str(d), False, False) == (0, 600, 0)
        outputs.append((d / part.name).read_bytes())
    assert outputs[0] == outputs[1]


@needs_dask
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_local_schedulers_give_the_same_records(scheduler):
    import dask.bag as db

    import textlrp.dask

    texts = ["a gorgeous , witty , seductive movie .", "not good", "", "bad"] * 50
    records = textlrp.dask.explain(db.from_sequence(texts, npartitions=4)).compute(
        scheduler=scheduler)
    results = textlrp.load_model().explain_corpus(texts, errors="record", keep_embedding=False)
    assert records == [r.to_dict() if isinstance(r, textlrp.Explanation)
                       else {"text": r.text, "error": r.error} for r in results]
