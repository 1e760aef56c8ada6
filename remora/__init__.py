"""Remora's command-line face: `remora <command>` wires the components together."""

__version__ = "0.1.0"
