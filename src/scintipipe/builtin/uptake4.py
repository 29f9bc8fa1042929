"""Registers the ``uptake4`` task (seeds 000 and 002) and its shipped bundle."""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl
from scintipipe.bundle import shipped_bundle_path

LABELS = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous")


@hookimpl
def register_tasks(register: Any) -> None:
    """Register the four 99mTc-pertechnetate uptake patterns and the ``uptake4`` bundle."""
    register.task("uptake4", LABELS, "99mTc-pertechnetate uptake pattern: diffusely increased/decreased, focal increased, heterogeneous")
    register.bundle("uptake4", shipped_bundle_path("uptake4"), task="uptake4")
