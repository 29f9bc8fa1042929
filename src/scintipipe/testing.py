"""Helpers for testing scintipipe and its plugins (public through :mod:`scintipipe.api`).

Example (in a plugin's tests)::

    from scintipipe.api import run_cli

    def test_my_task_is_listed():
        assert "my_task" in run_cli("bundles").output
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from click.testing import Result


def run_cli(*args: str | PathLike[str], expect_exit: int | None = 0, catch_exceptions: bool = False, env: Mapping[str, str | None] | None = None) -> Result:
    """Run ``scintipipe ARGS`` in this process, as a test does, with the installed plugins.

    Args:
        *args: the command line after ``scintipipe`` (paths are turned into strings).
        expect_exit: the exit code the run must end with (an ``AssertionError`` showing the
            output otherwise); ``None`` accepts any.
        catch_exceptions: turn an unexpected exception into exit code 1 instead of raising it.
        env: environment variables to set (``None`` values unset them) for the run only.

    Returns:
        click's :class:`~click.testing.Result`: ``exit_code``, ``output``, ``exception``.
    """
    from click.testing import CliRunner

    from scintipipe.cli import cli

    argv = [str(arg) for arg in args]
    result = CliRunner().invoke(cli, argv, catch_exceptions=catch_exceptions, env=env)
    if expect_exit is not None and result.exit_code != expect_exit:
        raise AssertionError(f"scintipipe {' '.join(argv)} exited with {result.exit_code}, expected {expect_exit}:\n{result.output}")
    return result
