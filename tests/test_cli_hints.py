"""Hints of the command line, through the real console script: where a model path came from,
help text for every option of `info`."""

from __future__ import annotations

import re

from conftest import assert_one_line_error, run_textlrp

VARIABLE = "environment variable TEXTLRP_MODEL"


def test_missing_model_from_the_environment_names_the_variable():
    proc = run_textlrp("info", env={"TEXTLRP_MODEL": "/nonexistent.npz"})
    assert_one_line_error(proc, "model file not found: /nonexistent.npz", VARIABLE)
    proc = run_textlrp("explain", "great", env={"TEXTLRP_MODEL": "/nonexistent.npz"})
    assert_one_line_error(proc, "/nonexistent.npz", VARIABLE)


def test_a_directory_from_the_environment_names_the_variable(tmp_path):
    proc = run_textlrp("info", env={"TEXTLRP_MODEL": str(tmp_path)})
    assert_one_line_error(proc, "is a directory", str(tmp_path), VARIABLE)


def test_model_given_on_the_command_line_does_not_blame_the_variable(tmp_path):
    proc = run_textlrp("info", "-m", str(tmp_path / "nope.npz"),
                       env={"TEXTLRP_MODEL": "/nonexistent.npz"})
    line = assert_one_line_error(proc, "model file not found", str(tmp_path / "nope.npz"))
    assert "TEXTLRP_MODEL" not in line and "/nonexistent.npz" not in line


def test_empty_variable_means_the_bundled_model():
    proc = run_textlrp("info", env={"TEXTLRP_MODEL": ""})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "sst5-bilstm" in proc.stdout


def test_every_info_option_has_help_text():
    proc = run_textlrp("info", "--help")
    assert proc.returncode == 0, proc.stderr
    heading = r"^(?:options|optional arguments):$"  # the latter before Python 3.10
    options = re.split(heading, proc.stdout, flags=re.MULTILINE)[1]
    entries = re.split(r"^  (?=-)", options, flags=re.MULTILINE)[1:]  # one per option
    flags = [e.split("\n")[0].split("  ")[0] for e in entries]
    assert "-f {text,json}, --format {text,json}" in flags, flags
    for flag, entry in zip(flags, entries):
        # argparse puts the help after two spaces on the same line, or indented below
        help_text = entry[len(flag):].strip()
        assert help_text, f"no help text for {flag}"
    assert "json: the same card as one JSON object" in " ".join(options.split())
