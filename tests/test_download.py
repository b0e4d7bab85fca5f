"""textlrp data sst: download, verify, install -- against a local HTTP server only (127.0.0.1)."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import socket
import threading
import zipfile

import pytest

from textlrp import download

FILES = {
    "train.txt": b"(3 (2 A) (4 good) (2 film))\n",
    "dev.txt": b"(1 (2 A) (1 dull) (2 film))\n",
    "test.txt": b"(2 (2 A) (2 film))\n",
}


def make_zip(files: dict[str, bytes], prefix: str = "trees/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
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
    """Serve {path: bytes} on 127.0.0.1 from a thread; yields (base_url, routes)."""
    routes: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
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
    parser = argparse.ArgumentParser()
    download.register_cli(parser.add_subparsers())
    args = parser.parse_args(
        ["data", "sst", "--dest", str(tmp_path / "d"), "--url", f"{base}/sst.zip", "--timeout", "5"]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "test.txt" in out and test_sums["test.txt"] in out
    assert (tmp_path / "d" / "train.txt").read_bytes() == FILES["train.txt"]
    with pytest.raises(SystemExit):  # `textlrp data` needs a data set name
        parser.parse_args(["data"])
