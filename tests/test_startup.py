"""Start-up stays light: help, listings and usage errors answer without importing PyTorch or MONAI.

Each command runs in a fresh interpreter, because this test process has long imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "monai", "cv2", "highdicom", "fastapi")

PROBE = """
import json, sys
from scintipipe.cli import cli
try:
    cli(sys.argv[1:], prog_name="scintipipe", standalone_mode=False)
except BaseException as exc:  # usage errors and SystemExit from --help
    print(type(exc).__name__, file=sys.stderr)
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def heavy_imports(*args: str) -> list[str]:
    code = PROBE.format(heavy=repr(HEAVY))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plugins"],
        ["bundles"],
        ["run", "--help"],
        ["simulate", "--help"],
        ["train", "--help"],
        ["gate", "fit", "--help"],
        ["serve", "--help"],
        ["run", "--bundle", "no-such-bundle", "."],
    ],
    ids=lambda args: " ".join(args),
)
def test_command_does_not_import_the_heavy_libraries(args: list[str]) -> None:
    assert heavy_imports(*args) == []
