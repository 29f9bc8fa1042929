"""Generated sections of Markdown files, kept between ``<!-- name:start -->`` and ``<!-- name:end -->``.

A command or benchmark that writes part of a hand-written document (a model card, a page
of ``docs/``) puts its output between two HTML comments; a rerun replaces only what lies
between them and leaves the rest of the file alone. Used by ``scintipipe gate fit`` (the
``gate`` section of a bundle's model card) and by the benchmarks (``real-images``,
``gate-refusals``, ...).

Example:
    >>> text = replace_marked("# Card\\n", "gate", "## Gate\\nv1")
    >>> print(text)
    # Card
    <BLANKLINE>
    <!-- gate:start -->
    ## Gate
    v1
    <!-- gate:end -->
    <BLANKLINE>
    >>> marked_content(replace_marked(text, "gate", "v2"), "gate")
    'v2'
"""

from __future__ import annotations

import re
from pathlib import Path


def markers(marker: str) -> tuple[str, str]:
    """The start and end comments of ``marker``."""
    return f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"


def _pattern(marker: str) -> re.Pattern[str]:
    start, end = markers(marker)
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)


def marked_block(marker: str, content: str) -> str:
    """``content`` between the markers (no trailing newline)."""
    start, end = markers(marker)
    return f"{start}\n{content.strip()}\n{end}"


def replace_marked(text: str, marker: str, content: str) -> str:
    """Put ``content`` between ``<!-- marker:start -->`` and ``<!-- marker:end -->``.

    The markers are appended (after a blank line) when absent; a rerun replaces only what
    lies between them, so the result of applying the same content twice is the same text.

    Args:
        text: the document.
        marker: the marker name (``real-images``).
        content: markdown to put between the markers.
    """
    block = marked_block(marker, content)
    pattern = _pattern(marker)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def marked_content(text: str, marker: str) -> str | None:
    """What lies between the markers (stripped), or ``None`` when they are absent."""
    match = _pattern(marker).search(text)
    if not match:
        return None
    start, end = markers(marker)
    return match.group(0)[len(start) : -len(end)].strip()


def remove_marked(text: str, marker: str) -> str:
    """``text`` without the marked block (the blank lines around it collapse to one)."""
    match = _pattern(marker).search(text)
    if not match:
        return text
    before, after = text[: match.start()].rstrip("\n"), text[match.end() :].lstrip("\n")
    if not before:
        return after
    return before + "\n" + (f"\n{after}" if after else "")


def update_file(path: Path, marker: str, content: str, title: str | None = None) -> None:
    """Apply :func:`replace_marked` to a file (created with ``title`` when missing)."""
    path = Path(path)
    text = path.read_text() if path.is_file() else (f"# {title}\n" if title else "")
    new = replace_marked(text, marker, content)
    if new != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new)
