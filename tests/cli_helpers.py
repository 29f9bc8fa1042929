"""Helpers shared by the tests that drive the ``scintipipe`` command line."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from scintipipe.cli import cli


def run(args: list[str]) -> tuple[int, str]:
    """Invoke ``scintipipe ARGS`` in-process; return the exit code and the output."""
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts."""
    with path.open() as handle:
        return list(csv.DictReader(handle))
