"""Install the Stanford Sentiment Treebank (``textlrp data sst --dest DIR``).

Fetches the official archive trainDevTestTrees_PTB.zip (or takes a local copy with
``--archive``), checks the sha256 of trees/{train,dev,test}.txt against the published
release and only then moves them into DEST. On any failure nothing is left behind: an
archive that is damaged, too large or not the release raises :class:`DownloadError`, a
network failure (including the overall deadline) ``ConnectionError``; temporary files are
removed, and those of a run that was killed are removed by the next run.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import socket
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "SST_SHA256",
    "SST_URL",
    "DownloadError",
    "install_sst",
    "sha256_file",
]

SST_URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"

# sha256 of the three tree files of the official release (Socher et al. 2013).
SST_SHA256 = {
    "train.txt": "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
    "dev.txt": "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
    "test.txt": "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
}

# The official archive is 0.8 MB and its three files 3.0 MB uncompressed. 8 MiB leaves room
# for a repacked (even uncompressed) copy, and stops a wrong URL or a hostile server from
# filling the disk: a download is refused once it would exceed this.
MAX_ARCHIVE_BYTES = 8 * 1024 * 1024
# The real files are 0.3-2.2 MB; anything far larger is not SST (and not worth unpacking).
_MAX_MEMBER_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 16

# Temporary files carry the pid of the run that writes them, so a later run can tell the
# leftovers of a killed run (process gone) from the files of a run still in progress.
_PART_PREFIXES = ("trainDevTestTrees_PTB", *SST_SHA256)
_PART = re.compile(
    r"\.(?:" + "|".join(re.escape(p) for p in _PART_PREFIXES) + r")\.(\d+)\.[^/]*\.part"
)
_STALE_SECONDS = 24 * 3600  # where liveness cannot be checked: a day without a write

# What reading a damaged archive raises: bad CRC (BadZipFile), bad deflate data (zlib.error),
# a cut-off stream (EOFError), encryption (RuntimeError), an unknown compression method
# (NotImplementedError), bad header fields (struct.error, ValueError); bz2 data errors are
# OSError, so OSError is caught around reads from the archive only, never around writes.
_CORRUPT: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    ValueError,
    OverflowError,
)
try:
    import lzma

    _CORRUPT += (lzma.LZMAError,)
except ImportError:  # Python built without lzma: zipfile cannot read such members anyway
    pass
_CORRUPT_OR_OS: tuple[type[BaseException], ...] = (*_CORRUPT, OSError)


class DownloadError(ValueError):
    """The archive cannot be installed: not a zip, damaged, too large, or not the release."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _offline_hint(url: str, dest: Path) -> str:
    return (
        f"Without network access, download {url} on another machine and install it from the file:\n"
        f"  textlrp data sst --dest {dest} --archive PATH/TO/trainDevTestTrees_PTB.zip"
    )


def _fetch(
    url: str, out: BinaryIO, *, timeout: float, deadline: float, progress: bool, dest: Path
) -> None:
    """Copy url to out: at most MAX_ARCHIVE_BYTES, in at most ``deadline`` seconds overall.

    ``timeout`` bounds each network operation; the deadline is checked after every read, and
    no single operation may wait longer than the deadline either, so the whole download ends
    within deadline + min(timeout, deadline) seconds even against a server that sends one
    byte at a time.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "textlrp"})
    end = time.monotonic() + deadline
    try:
        with urllib.request.urlopen(request, timeout=min(timeout, deadline)) as response:
            total = response.headers.get("Content-Length")
            size = int(total) if total and total.isdigit() else None
            if size is not None and size > MAX_ARCHIVE_BYTES:
                raise DownloadError(_too_large(url, f"announces {size} bytes"))
            from tqdm import tqdm

            written = 0
            with tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="trainDevTestTrees_PTB.zip",
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                while True:
                    if time.monotonic() > end:
                        raise TimeoutError(f"not finished after the deadline of {deadline:g} s")
                    # read1: whatever has arrived, so a slow trickle cannot hold one call
                    # past the deadline the way read(n) waiting for n bytes would.
                    block = response.read1(_CHUNK)
                    if not block:
                        break
                    written += len(block)
                    if written > MAX_ARCHIVE_BYTES:
                        raise DownloadError(
                            _too_large(url, f"sent more than {written - len(block)} bytes")
                        )
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        raise ConnectionError(
            f"could not download {url} (HTTP {exc.code} {exc.reason}).\n" + _offline_hint(url, dest)
        ) from None
    except urllib.error.URLError as exc:
        raise ConnectionError(
            f"could not download {url} ({exc.reason}).\n" + _offline_hint(url, dest)
        ) from None
    except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        raise ConnectionError(
            f"could not download {url} ({exc or type(exc).__name__}).\n" + _offline_hint(url, dest)
        ) from None


def _too_large(url: str, what: str) -> str:
    return (
        f"{url} {what}, more than the {MAX_ARCHIVE_BYTES} allowed; the SST archive is about "
        "0.8 MB, so this is not it. Nothing was installed."
    )


def _temp_file(dest: Path, stem: str, suffix: str) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{os.getpid()}.", suffix=suffix, dir=dest)
    return fd, Path(tmp)


def _remove_stale_parts(dest: Path) -> None:
    """Remove the temporary files of earlier runs that were killed before cleaning up."""
    for path in dest.glob(".*.part"):
        m = _PART.fullmatch(path.name)
        if m is None or not path.is_file():
            continue  # not ours: leave it
        if _stale(int(m.group(1)), path):
            path.unlink(missing_ok=True)


def _stale(pid: int, path: Path) -> bool:
    if pid == os.getpid():
        return False
    if os.name == "posix":
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except OSError:  # e.g. EPERM: it exists, under another user
            return False
        return False
    # Elsewhere os.kill(pid, 0) is not a harmless probe; go by age instead.
    try:
        return time.time() - path.stat().st_mtime > _STALE_SECONDS
    except OSError:
        return False


def _member(zf: zipfile.ZipFile, name: str, archive: str) -> zipfile.ZipInfo:
    hits = [
        i
        for i in zf.infolist()
        if not i.is_dir()
        and (i.filename == f"trees/{name}" or i.filename.endswith(f"/trees/{name}"))
    ]
    if len(hits) != 1:
        what = "lacks" if not hits else "has several"
        raise DownloadError(f"{archive} {what} trees/{name}; is it trainDevTestTrees_PTB.zip?")
    if hits[0].file_size > _MAX_MEMBER_BYTES:
        raise DownloadError(
            f"{archive}: {_shown(hits[0].filename)} is {hits[0].file_size} bytes, too large for SST"
        )
    return hits[0]


def _stage(
    zip_path: Path,
    archive_label: str,
    dest: Path,
    expected: dict[str, str],
    staged: dict[str, Path],
) -> None:
    """Unpack each member to a temp file in dest, hashing as it goes; raise on a mismatch."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except _CORRUPT:
        raise DownloadError(
            f"{archive_label} is not a zip archive, or a truncated one (expected "
            "trainDevTestTrees_PTB.zip); nothing was installed"
        ) from None
    with zf:
        for name, want in expected.items():
            info = _member(zf, name, archive_label)
            fd, staged[name] = _temp_file(dest, name, ".part")
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for block in _read_member(zf, info, archive_label):
                    h.update(block)
                    out.write(block)
            if h.hexdigest() != want:
                raise DownloadError(
                    f"sha256 mismatch for {_shown(info.filename)} in {archive_label}:\n"
                    f"  expected {want}\n"
                    f"  got      {h.hexdigest()}\n"
                    "This is not the official SST release (or it was damaged "
                    "in transit); nothing was installed."
                )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Iterator[bytes]:
    """The member's data in blocks; any damage raises DownloadError. Only reads from the
    archive are guarded, so an error writing the copy (a full disk) stays an OSError."""
    try:
        src = zf.open(info)
    except _CORRUPT_OR_OS as exc:  # a bad local header, encryption, ...
        raise _damaged(label, info, exc) from None
    with src:
        while True:
            try:
                block = src.read(_CHUNK)
            except _CORRUPT_OR_OS as exc:
                raise _damaged(label, info, exc) from None
            if not block:
                return
            yield block


def _damaged(label: str, info: zipfile.ZipInfo, exc: BaseException) -> DownloadError:
    return DownloadError(
        f"{label} is damaged: {_shown(info.filename)} cannot be read "
        f"({exc or type(exc).__name__}); nothing was installed. Download it again."
    )


def _shown(name: str) -> str:
    # Member names come from the archive: never let one put control characters on a terminal.
    return name if name.isprintable() else ascii(name)


def install_sst(
    dest: str | os.PathLike[str],
    *,
    url: str = SST_URL,
    archive: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    deadline: float = 600.0,
    progress: bool | None = None,
) -> dict[str, Path]:
    """Install DEST/{train,dev,test}.txt from the official SST archive; return their paths.

    archive: a local copy of trainDevTestTrees_PTB.zip (no network used). Without it the
    archive is downloaded from ``url``: ``timeout`` seconds at most per network operation
    (connect, read), ``deadline`` seconds for the whole download, at most
    :data:`MAX_ARCHIVE_BYTES` bytes. Files already in DEST with the right sha256 are
    kept (nothing is downloaded); other existing files are only replaced with ``force``.
    Each file is checked against :data:`SST_SHA256` before any is moved into place
    (each move is an atomic rename); on failure temporary files are removed, and DEST too
    if this call created it. Temporary files that a killed run left in DEST are removed.

    Raises DownloadError (a ValueError) for an archive that is damaged, too large or not the
    release, ConnectionError when the download fails or misses the deadline.
    """
    dest = Path(dest)
    expected = dict(SST_SHA256)
    targets = {name: dest / name for name in expected}
    if progress is None:
        progress = sys.stderr.isatty()
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} exists and is not a directory")
    present = [n for n, p in targets.items() if p.exists()]
    for what, value in (("timeout", timeout), ("deadline", deadline)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    if dest.is_dir():
        _remove_stale_parts(dest)
    if present and not force:
        if len(present) == len(targets) and all(
            sha256_file(targets[n]) == expected[n] for n in targets
        ):
            return targets
        raise FileExistsError(
            f"{dest} already holds {', '.join(present)} that are not (all) the verified SST "
            "files; pass --force (force=True) to replace them"
        )
    if archive is not None and not Path(archive).is_file():
        raise FileNotFoundError(f"no such archive: {archive}")

    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    download: Path | None = None
    try:
        if archive is None:
            fd, download = _temp_file(dest, "trainDevTestTrees_PTB", ".zip.part")
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout=timeout, deadline=deadline, progress=progress, dest=dest)
            _stage(download, url, dest, expected, staged)
        else:
            _stage(Path(archive), str(archive), dest, expected, staged)
        for name, tmp_path in staged.items():
            os.replace(tmp_path, targets[name])
        staged.clear()
    finally:
        for tmp_path in [*staged.values(), *([download] if download else [])]:
            tmp_path.unlink(missing_ok=True)
        if created and not any(dest.iterdir()):
            dest.rmdir()
    return targets
