"""Remora's command-line face: `remora <command>` wires the components together."""

from common.version import VERSION as __version__

__all__ = ["__version__"]
