"""Install the Stanford Sentiment Treebank (``textlrp data sst --dest DIR``).

Fetches the official archive trainDevTestTrees_PTB.zip (or takes a local copy with
``--archive``), checks the sha256 of trees/{train,dev,test}.txt against the published
release and only then moves them into DEST. On any failure nothing is left behind.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["SST_SHA256", "SST_URL", "install_sst", "register_cli", "sha256_file"]

SST_URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"

# sha256 of the three tree files of the official release (Socher et al. 2013).
SST_SHA256 = {
    "train.txt": "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
    "dev.txt": "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
    "test.txt": "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
}

# The real files are 0.3-2.2 MB; anything far larger is not SST (and not worth unpacking).
_MAX_MEMBER_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 16


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


def _fetch(url: str, out: BinaryIO, *, timeout: float, progress: bool, dest: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "textlrp"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            from tqdm import tqdm

            with tqdm(
                total=int(total) if total and total.isdigit() else None,
                unit="B",
                unit_scale=True,
                desc="trainDevTestTrees_PTB.zip",
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
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
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise ConnectionError(
            f"could not download {url} ({exc}).\n" + _offline_hint(url, dest)
        ) from None


def _member(zf: zipfile.ZipFile, name: str, archive: str) -> zipfile.ZipInfo:
    hits = [
        i
        for i in zf.infolist()
        if not i.is_dir()
        and (i.filename == f"trees/{name}" or i.filename.endswith(f"/trees/{name}"))
    ]
    if len(hits) != 1:
        what = "lacks" if not hits else "has several"
        raise ValueError(f"{archive} {what} trees/{name}; is it trainDevTestTrees_PTB.zip?")
    if hits[0].file_size > _MAX_MEMBER_BYTES:
        raise ValueError(
            f"{archive}: {hits[0].filename} is {hits[0].file_size} bytes, too large for SST"
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
    except zipfile.BadZipFile:
        raise ValueError(
            f"{archive_label} is not a zip archive (expected trainDevTestTrees_PTB.zip)"
        ) from None
    with zf:
        for name, want in expected.items():
            info = _member(zf, name, archive_label)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
            staged[name] = Path(tmp)
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                for block in iter(lambda: src.read(_CHUNK), b""):
                    h.update(block)
                    out.write(block)
            if h.hexdigest() != want:
                raise ValueError(
                    f"sha256 mismatch for {info.filename} in {archive_label}:\n  expected {want}\n"
                    f"  got      {h.hexdigest()}\n"
                    "This is not the official SST release (or it was damaged "
                    "in transit); nothing was installed."
                )


def install_sst(
    dest: str | os.PathLike[str],
    *,
    url: str = SST_URL,
    archive: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    progress: bool | None = None,
) -> dict[str, Path]:
    """Install DEST/{train,dev,test}.txt from the official SST archive; return their paths.

    archive: a local copy of trainDevTestTrees_PTB.zip (no network used). Without it the
    archive is downloaded from ``url``. Files already in DEST with the right sha256 are
    kept (nothing is downloaded); other existing files are only replaced with ``force``.
    Each file is checked against :data:`SST_SHA256` before any is moved into place
    (each move is an atomic rename); on failure temporary files are removed, and DEST too
    if this call created it.
    """
    dest = Path(dest)
    expected = dict(SST_SHA256)
    targets = {name: dest / name for name in expected}
    if progress is None:
        progress = sys.stderr.isatty()
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} exists and is not a directory")
    present = [n for n, p in targets.items() if p.exists()]
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
            fd, tmp = tempfile.mkstemp(
                prefix=".trainDevTestTrees_PTB.", suffix=".zip.part", dir=dest
            )
            download = Path(tmp)
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout=timeout, progress=progress, dest=dest)
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


def register_cli(subparsers: Any) -> None:
    """Add the ``data`` subcommand with its ``sst`` sub-subcommand."""
    p = subparsers.add_parser("data", help="download data sets", description="Download data sets.")
    sub = p.add_subparsers(dest="dataset", metavar="DATASET")
    sub.required = True
    s = sub.add_parser(
        "sst",
        help="Stanford Sentiment Treebank (train/dev/test PTB trees)",
        description=f"Fetch the official SST archive ({SST_URL}), verify the sha256 of "
        "trees/{train,dev,test}.txt and install them as DEST/{train,dev,test}.txt.",
    )
    s.add_argument("--dest", required=True, help="directory for train.txt, dev.txt, test.txt")
    s.add_argument("--url", default=SST_URL, help="archive URL (default: %(default)s)")
    s.add_argument(
        "--archive",
        default=None,
        metavar="PATH",
        help="install from a local trainDevTestTrees_PTB.zip instead of downloading",
    )
    s.add_argument("--force", action="store_true", help="replace existing files in DEST")
    s.add_argument(
        "--timeout", type=float, default=60.0, help="network timeout in seconds (default: 60)"
    )
    s.set_defaults(func=_cli_sst)


def _cli_sst(args: argparse.Namespace) -> int:
    paths = install_sst(
        args.dest, url=args.url, archive=args.archive, force=args.force, timeout=args.timeout
    )
    for name, path in paths.items():
        print(f"{path}  sha256 {SST_SHA256[name]}")
    return 0
