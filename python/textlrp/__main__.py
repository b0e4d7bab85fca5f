"""``python -m textlrp``: the same as the ``textlrp`` command."""

from textlrp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
