"""The demo's one error type: something did not come up; the message says what and where to look."""

from __future__ import annotations


class DemoError(Exception):
    """A step of the demo failed or ran out of time."""
