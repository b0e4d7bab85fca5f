"""Show explanations to people and programs: terminal colours, HTML, JSON Lines, TSV.

Each output format is a :class:`Writer` in its own module of this package, registered
with :func:`register`; importing the package imports every public module in it, so a new
format is a new file. ``WRITERS`` maps format names to the classes; the command line reads
its ``--format`` choices and the formats of ``--output`` suffixes from it.

    from textlrp.render import WriterOptions, make_writer
    w = make_writer("html", open("report.html", "w"), WriterOptions(class_names=model.class_names))
    w.begin(); w.explanation(model.explain(text)); w.end()

Red marks evidence for the explained class, blue evidence against it (_palette.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..explanation import Prediction
from ..explanation import json_ready as _jsonable  # noqa: F401 (the old private name, still used)
from ._palette import Scaler, check_scale
from ._writer import (
    WRITERS,
    Writer,
    WriterOptions,
    format_for_path,
    format_names,
    make_writer,
    register,
    suffix_formats,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from .ansi import (  # after the registry is filled
    detect_color,
    detect_theme,
    prediction_to_ansi,
    terminal_palette,
    to_ansi,
)
from .html import to_html
from .jsonl import error_record, prediction_to_json, to_json
from .tsv import to_tsv

__all__ = [
    "WRITERS",
    "Prediction",
    "Scaler",
    "Writer",
    "WriterOptions",
    "check_scale",
    "detect_color",
    "detect_theme",
    "error_record",
    "format_for_path",
    "format_names",
    "make_writer",
    "prediction_to_ansi",
    "prediction_to_json",
    "register",
    "suffix_formats",
    "terminal_palette",
    "to_ansi",
    "to_html",
    "to_json",
    "to_tsv",
]
