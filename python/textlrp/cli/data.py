"""``textlrp data sst``: install the Stanford Sentiment Treebank (see textlrp.download)."""

from __future__ import annotations

import argparse
from typing import Any

from . import options


def add_parser(subparsers: Any) -> None:
    from ..download import SST_URL

    p = subparsers.add_parser("data", help="download data sets", description="Download data sets.")
    sub = p.add_subparsers(dest="dataset", metavar="DATASET", parser_class=options.Parser)
    sub.required = True
    s = sub.add_parser(
        "sst",
        help="Stanford Sentiment Treebank (train/dev/test PTB trees)",
        description=f"Fetch the official SST archive ({SST_URL}), verify the sha256 of "
        "trees/{train,dev,test}.txt and install them as DEST/{train,dev,test}.txt.",
    )
    s.add_argument("--dest", required=True, help="directory for train.txt, dev.txt, test.txt")
    s.add_argument("--url", default=SST_URL, help="archive URL (default: %(default)s)")
    s.add_argument("--archive", default=None, metavar="PATH",
                   help="install from a local trainDevTestTrees_PTB.zip instead of downloading")
    s.add_argument("--force", action="store_true", help="replace existing files in DEST")
    s.add_argument("--timeout", type=options.seconds, default=60.0, metavar="SECONDS",
                   help="longest wait for one network operation, connect or read (default: 60)")
    s.add_argument("--deadline", type=options.seconds, default=600.0, metavar="SECONDS",
                   help="longest time for the whole download; slower downloads are abandoned "
                        "(default: 600)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..download import SST_SHA256, install_sst

    options.check_output_dir(args.dest, "--dest")
    paths = install_sst(args.dest, url=args.url, archive=args.archive, force=args.force,
                        timeout=args.timeout, deadline=args.deadline)
    for name, path in paths.items():
        print(f"{path}  sha256 {SST_SHA256[name]}")
    return 0
