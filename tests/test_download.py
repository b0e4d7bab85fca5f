"""textlrp data sst: download, verify, install -- against a local HTTP server only (127.0.0.1)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from conftest import assert_one_line_error, run_textlrp, textlrp_script

from textlrp import download

FILES = {
    "train.txt": b"(3 (2 A) (4 good) (2 film))\n",
    "dev.txt": b"(1 (2 A) (1 dull) (2 film))\n",
    "test.txt": b"(2 (2 A) (2 film))\n",
}


def make_zip(
    files: dict[str, bytes], prefix: str = "trees/", compression: int = zipfile.ZIP_STORED
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr(prefix, b"")  # directory entry, as in the official archive
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return buf.getvalue()


@pytest.fixture
def test_sums(monkeypatch):
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}
    monkeypatch.setattr(download, "SST_SHA256", sums)
    return sums


@pytest.fixture
def server():
    """Serve routes on 127.0.0.1 from a thread; yields (base_url, routes).

    A route is the bytes of a body, or a function(handler, stop) that answers the request
    itself; such a function must end by itself within a few seconds, or when the client
    hangs up, or when ``stop`` (set at teardown) is set.
    """
    routes: dict[str, object] = {}
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if callable(body):
                body(self, stop)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 5
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_install_from_local_server(server, test_sums, tmp_path):
    base, routes = server
    routes["/sst.zip"] = make_zip(FILES)
    dest = tmp_path / "sst"
    paths = download.install_sst(dest, url=f"{base}/sst.zip", timeout=5, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [
        "dev.txt",
        "test.txt",
        "train.txt",
    ]  # no temp files left
    for name, data in FILES.items():
        assert paths[name] == dest / name
        assert (dest / name).read_bytes() == data


def test_already_installed_is_kept_without_network(test_sums, tmp_path):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    # An unusable URL proves nothing is fetched when verified files are present.
    paths = download.install_sst(
        tmp_path, url="http://127.0.0.1:1/none.zip", timeout=1, progress=False
    )
    assert paths["test.txt"].read_bytes() == FILES["test.txt"]


def test_existing_other_files_need_force(server, test_sums, tmp_path):
    base, routes = server
    routes["/sst.zip"] = make_zip(FILES)
    (tmp_path / "test.txt").write_bytes(b"my own edits\n")
    with pytest.raises(FileExistsError, match="--force"):
        download.install_sst(tmp_path, url=f"{base}/sst.zip", timeout=5, progress=False)
    assert (tmp_path / "test.txt").read_bytes() == b"my own edits\n"
    download.install_sst(tmp_path, url=f"{base}/sst.zip", timeout=5, progress=False, force=True)
    assert (tmp_path / "test.txt").read_bytes() == FILES["test.txt"]


def test_checksum_mismatch_leaves_nothing(server, test_sums, tmp_path):
    base, routes = server
    routes["/sst.zip"] = make_zip({**FILES, "test.txt": b"(2 (2 tampered))\n"})
    dest = tmp_path / "new"
    with pytest.raises(
        ValueError, match=r"(?s)sha256 mismatch for trees/test.txt.*nothing was installed"
    ) as info:
        download.install_sst(dest, url=f"{base}/sst.zip", timeout=5, progress=False)
    assert test_sums["test.txt"] in str(info.value)
    assert not dest.exists()  # created by the call, removed again

    # In an existing directory: its other content stays, no SST file nor temp file appears.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.md").write_text("mine")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        download.install_sst(tmp_path / "old", url=f"{base}/sst.zip", timeout=5, progress=False)
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["notes.md"]


def test_real_sums_reject_test_archive(server, tmp_path):
    # Without the monkeypatched table the hand-made archive must fail the official sums.
    base, routes = server
    routes["/sst.zip"] = make_zip(FILES)
    with pytest.raises(ValueError, match=download.SST_SHA256["train.txt"]):
        download.install_sst(tmp_path / "d", url=f"{base}/sst.zip", timeout=5, progress=False)
    assert not (tmp_path / "d").exists()


def test_connection_failure_mentions_archive(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "sst"
    with pytest.raises(ConnectionError, match="--archive") as info:
        download.install_sst(dest, url=f"http://127.0.0.1:{port}/x.zip", timeout=5, progress=False)
    assert "could not download" in str(info.value)
    assert not dest.exists()


def test_http_error_and_not_a_zip(server, test_sums, tmp_path):
    base, routes = server
    with pytest.raises(ConnectionError, match=r"HTTP 404(.|\n)*--archive"):
        download.install_sst(tmp_path / "a", url=f"{base}/missing.zip", timeout=5, progress=False)
    routes["/page.zip"] = b"<html>not a zip</html>"
    with pytest.raises(ValueError, match="not a zip archive"):
        download.install_sst(tmp_path / "b", url=f"{base}/page.zip", timeout=5, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_archive_option_and_layout_errors(test_sums, tmp_path):
    good = tmp_path / "trainDevTestTrees_PTB.zip"
    good.write_bytes(make_zip(FILES))
    download.install_sst(tmp_path / "ok", archive=good, progress=False)
    assert (tmp_path / "ok" / "dev.txt").read_bytes() == FILES["dev.txt"]

    wrong = tmp_path / "wrong.zip"
    wrong.write_bytes(make_zip({"train.txt": FILES["train.txt"]}))
    with pytest.raises(ValueError, match="lacks trees/dev.txt"):
        download.install_sst(tmp_path / "w", archive=wrong, progress=False)
    assert not (tmp_path / "w").exists()
    with pytest.raises(FileNotFoundError, match="no such archive"):
        download.install_sst(tmp_path / "m", archive=tmp_path / "missing.zip", progress=False)


def test_cli(server, test_sums, tmp_path, capsys):
    base, routes = server
    routes["/sst.zip"] = make_zip(FILES)
    from textlrp.cli import main

    argv = ["data", "sst", "--dest", str(tmp_path / "d"), "--url", f"{base}/sst.zip", "--timeout",
            "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test.txt" in out and test_sums["test.txt"] in out
    assert (tmp_path / "d" / "train.txt").read_bytes() == FILES["train.txt"]
    assert main(["data"]) == 2  # `textlrp data` needs a data set name: one line
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("textlrp: error: ") and "DATASET" in err[0]


# --------------------------------------------------------------------------- damaged archives


def _data_offset(archive: bytes, member: str) -> tuple[int, zipfile.ZipInfo]:
    """Where the (compressed) data of member starts in archive, read from its local header."""
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(member)
    name_len, extra_len = struct.unpack_from("<HH", archive, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len, info


def bad_crc() -> bytes:
    # Stored data changed after the CRC was written: the bytes read back fail the CRC.
    data = make_zip(FILES)
    assert data.count(b"(2 A) (4 good)") == 1
    return data.replace(b"(2 A) (4 good)", b"(2 B) (4 good)")


def bad_deflate() -> bytes:
    data = bytearray(make_zip(FILES, compression=zipfile.ZIP_DEFLATED))
    start, _ = _data_offset(bytes(data), "trees/train.txt")
    data[start] = 0xFF  # a final block of the reserved type 3: invalid deflate data
    return bytes(data)


def bad_header() -> bytes:
    data = bytearray(make_zip(FILES))
    offset = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("trees/train.txt").header_offset
    data[offset : offset + 4] = b"XXXX"  # the local header's signature
    return bytes(data)


def truncated() -> bytes:
    data = make_zip(FILES)
    return data[: len(data) // 2]  # a download cut off halfway: no central directory


DAMAGED = {
    "bad CRC": (bad_crc, r"damaged: trees/train\.txt cannot be read \(Bad CRC-32"),
    "bad deflate data": (bad_deflate, r"damaged: trees/train\.txt cannot be read \(.*invalid"),
    "bad local header": (bad_header, r"damaged: trees/train\.txt cannot be read \(Bad magic"),
    "truncated zip": (truncated, r"not a zip archive, or a truncated one"),
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_archive_is_one_download_error(kind, test_sums, tmp_path):
    make, message = DAMAGED[kind]
    archive = tmp_path / "trainDevTestTrees_PTB.zip"
    archive.write_bytes(make())
    dest = tmp_path / "sst"
    with pytest.raises(download.DownloadError, match=message) as info:
        download.install_sst(dest, archive=archive, progress=False)
    assert "nothing was installed" in str(info.value)
    assert isinstance(info.value, ValueError)  # what the CLI turns into one line
    assert not dest.exists()


def test_damaged_download_is_one_line_from_the_console_script(server, tmp_path):
    base, routes = server
    routes["/sst.zip"] = bad_deflate()
    dest = tmp_path / "sst"
    proc = run_textlrp("data", "sst", "--dest", str(dest), "--url", f"{base}/sst.zip", timeout=60)
    assert_one_line_error(proc, "is damaged", "trees/train.txt", "nothing was installed")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not dest.exists()


def test_member_names_are_not_printed_raw(test_sums, tmp_path):
    archive = tmp_path / "a.zip"
    tampered = {**FILES, "train.txt": b"(2 (2 tampered))\n"}
    archive.write_bytes(make_zip(tampered, prefix="\x1b]0;pwned\x07/trees/"))
    dest = tmp_path / "d"
    with pytest.raises(download.DownloadError, match="sha256 mismatch") as info:
        download.install_sst(dest, archive=archive, progress=False)
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


# --------------------------------------------------------------------------- size and time


def test_download_size_is_capped_and_reading_stops(server, test_sums, tmp_path, monkeypatch):
    base, routes = server
    monkeypatch.setattr(download, "MAX_ARCHIVE_BYTES", 1 << 20)
    seen: dict[str, object] = {}

    def endless(handler, stop):
        """Zeros without a Content-Length until the client hangs up (at most 256 MiB)."""
        handler.send_response(200)
        handler.end_headers()
        sent = 0
        try:
            while sent < 256 * 2**20 and not stop.is_set():
                handler.wfile.write(b"\0" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            seen["hung_up"] = True
        seen["sent"] = sent

    routes["/endless.zip"] = endless
    dest = tmp_path / "sst"
    with pytest.raises(download.DownloadError, match=r"sent more than \d+ bytes.*not it"):
        download.install_sst(dest, url=f"{base}/endless.zip", timeout=5, progress=False)
    assert not dest.exists()  # the partial download went, with the folder the call made
    for _ in range(100):  # the handler thread notices the hang-up on its next writes
        if "sent" in seen:
            break
        time.sleep(0.05)
    # The client stopped reading: the server was cut off long before its own bound.
    assert seen.get("hung_up") and seen["sent"] < 64 * 2**20, seen


def test_announced_size_above_the_cap_is_refused_before_reading(server, test_sums, tmp_path):
    base, routes = server
    too_big = download.MAX_ARCHIVE_BYTES + 1

    def announce(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(too_big))
        handler.end_headers()
        handler.wfile.write(b"PK")  # the rest never comes; the client must not wait for it

    routes["/big.zip"] = announce
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match=f"announces {too_big} bytes"):
        download.install_sst(tmp_path / "d", url=f"{base}/big.zip", timeout=5, progress=False)
    assert time.monotonic() - start < 4


def test_the_cap_fits_the_real_archive():
    # The official zip is 0.8 MB; its three files are 3,000,497 bytes uncompressed, so even
    # a stored (uncompressed) repack fits, while 400 MB of junk does not.
    assert 3_000_497 * 2 <= download.MAX_ARCHIVE_BYTES <= 16 * 2**20


def _trickle(handler, stop):
    """Announces 10 kB, then sends one byte every 50 ms (at most 10 s)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "10000")
    handler.end_headers()
    try:
        for _ in range(200):
            if stop.is_set():
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _stall(handler, stop):
    """Headers, then silence until the test ends (at most 10 s)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "10000")
    handler.end_headers()
    handler.wfile.flush()
    stop.wait(10)


@pytest.mark.parametrize("route", [_trickle, _stall], ids=["trickle", "stall"])
def test_deadline_bounds_the_whole_download(route, server, test_sums, tmp_path):
    # A trickle never lets one read time out (--timeout 5), a stall waits inside one read:
    # the deadline (0.5 s) ends both.
    base, routes = server
    routes["/slow.zip"] = route
    dest = tmp_path / "sst"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"could not download .*slow\.zip") as info:
        download.install_sst(dest, url=f"{base}/slow.zip", timeout=5, deadline=0.5, progress=False)
    elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 2.5, elapsed
    if route is _trickle:
        assert "deadline of 0.5 s" in str(info.value)
    assert not dest.exists()


def test_timeout_and_deadline_must_be_positive(tmp_path):
    for kwargs in ({"timeout": 0}, {"deadline": -1}, {"deadline": float("nan")}):
        with pytest.raises(ValueError, match="positive number of seconds"):
            download.install_sst(tmp_path / "d", progress=False, **kwargs)
    proc = run_textlrp("data", "sst", "--dest", str(tmp_path / "d"), "--deadline", "0")
    assert_one_line_error(proc, "--deadline", "positive number of seconds")
    help_text = run_textlrp("data", "sst", "--help").stdout
    assert "--deadline SECONDS" in help_text and "whole download" in help_text


# --------------------------------------------------------------------------- leftovers


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_part_files_of_dead_runs_are_removed(server, test_sums, tmp_path):
    base, routes = server
    routes["/sst.zip"] = make_zip(FILES)
    dead = _dead_pid()
    stale = [
        tmp_path / f".trainDevTestTrees_PTB.{dead}.abc123.zip.part",
        tmp_path / f".train.txt.{dead}.xyz.part",
    ]
    alive = tmp_path / f".trainDevTestTrees_PTB.{os.getppid()}.def456.zip.part"  # a live run
    mine = [tmp_path / "notes.part", tmp_path / ".other.123.part"]  # not the downloader's
    for path in [*stale, alive, *mine]:
        path.write_bytes(b"partial")
    download.install_sst(tmp_path, url=f"{base}/sst.zip", timeout=5, progress=False)
    assert not any(p.exists() for p in stale)
    assert alive.exists() and all(p.exists() for p in mine)
    # Also when everything is installed already and nothing is downloaded:
    stale[0].write_bytes(b"partial")
    download.install_sst(tmp_path, url="http://127.0.0.1:1/none.zip", timeout=1, progress=False)
    assert not stale[0].exists()


def test_killed_download_leaves_a_part_file_the_next_run_removes(server, test_sums, tmp_path):
    base, routes = server
    body = make_zip(FILES)
    routes["/sst.zip"] = body

    def half_then_wait(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        stop.wait(20)

    routes["/half.zip"] = half_then_wait
    dest = tmp_path / "sst"
    child = subprocess.Popen(
        [str(textlrp_script()), "data", "sst", "--dest", str(dest), "--url", f"{base}/half.zip"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        parts = []
        for _ in range(400):  # up to 20 s for the child to start and begin the download
            parts = list(dest.glob(".*.part")) if dest.exists() else []
            if parts:
                break
            time.sleep(0.05)
        assert parts, "the child never started the download"
        time.sleep(0.2)  # let it read the first half (it then waits for the rest)
    finally:
        child.send_signal(signal.SIGKILL)  # no chance to clean up
        child.wait(timeout=10)
    assert [p.exists() for p in parts] == [True]
    download.install_sst(dest, url=f"{base}/sst.zip", timeout=5, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["dev.txt", "test.txt", "train.txt"]
