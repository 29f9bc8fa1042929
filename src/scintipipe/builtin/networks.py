"""Registers the networks scintipipe ships (:data:`scintipipe.networks.NETWORKS`) through ``register_networks``."""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl
def register_networks(register: Any) -> None:
    """Register every built-in network under its name (torch and MONAI are imported here, not at start-up)."""
    from scintipipe.networks.registry import NETWORKS

    for name, spec in NETWORKS.items():
        register.network(name, spec)
