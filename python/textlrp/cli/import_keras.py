"""``textlrp import-keras``: convert a Keras 3 ``.keras`` file to a textlrp model file. The
conversion and its options live in :mod:`textlrp.keras_import` (Keras and h5py load only when
the command runs)."""

from __future__ import annotations

from typing import Any


def add_parser(subparsers: Any) -> None:
    from .. import keras_import

    p = subparsers.add_parser(
        "import-keras", help="convert a Keras .keras model to a textlrp model",
        description="Convert a Keras 3 model file (.keras) to a textlrp model file (.npz), "
                    "reading it without running code from it.")
    keras_import.add_cli_arguments(p)
    p.set_defaults(func=keras_import.run_cli)
