"""Results read from a Job pod's termination message (at most 4 KiB, written by the work itself).

The message is external input: it is size- and depth-bounded, and a message that is not what
the capability expects becomes a summary saying so, never a failed reconcile.
"""

from __future__ import annotations

from typing import Any, Final

from common.jsonio import BadJSON, loads_bounded

Obj = dict[str, Any]

MESSAGE_MAX_BYTES: Final = 4096  # the kubelet's own cap on a termination message
SUMMARY_MAX: Final = 1024
COUNT_MAX: Final = 10**9
COUNT_FIELDS: Final = ("passed", "failed", "skipped")


def summary_result(message: str | None) -> Obj | None:
    """A plain-text result: the first SUMMARY_MAX characters of the message."""
    if not message or not message.strip():
        return None
    return {"summary": message.strip()[:SUMMARY_MAX]}


def test_result(message: str | None) -> Obj | None:
    """Test counts from a JSON message: {"passed": n, "failed": n, "skipped": n, "summary": "..."}."""
    if message is None or not message.strip():
        return None
    try:
        value = loads_bounded(message.encode("utf-8", "replace"), max_bytes=MESSAGE_MAX_BYTES, max_depth=4)
    except BadJSON as exc:
        return {"summary": f"termination message is not test results: {exc}"[:SUMMARY_MAX]}
    if not isinstance(value, dict):
        return {"summary": "termination message is not test results: expected a JSON object"}
    result: Obj = {}
    problems: list[str] = []
    for name in COUNT_FIELDS:
        count = value.get(name, 0)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= COUNT_MAX:
            problems.append(f"{name} must be an integer from 0 to {COUNT_MAX}")
            continue
        result[name] = count
    summary = value.get("summary")
    if summary is not None and not isinstance(summary, str):
        problems.append("summary must be a string")
        summary = None
    if problems:
        result["summary"] = ("termination message has bad test results: " + "; ".join(problems))[:SUMMARY_MAX]
    elif summary:
        result["summary"] = summary[:SUMMARY_MAX]
    return result


test_result.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
