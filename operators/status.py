"""Status of a capability resource: phases and Kubernetes-style conditions.

Conditions follow metav1.Condition: type, status ("True", "False", "Unknown"), reason
(CamelCase), message, lastTransitionTime (changes only when status changes) and
observedGeneration.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, Final

Obj = dict[str, Any]

PENDING: Final = "Pending"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
UNKNOWN: Final = "Unknown"
TERMINAL_PHASES: Final = frozenset({SUCCEEDED, FAILED, UNKNOWN})

ACCEPTED: Final = "Accepted"
CONDITION_TYPES: Final = (ACCEPTED, RUNNING, SUCCEEDED, FAILED)
MESSAGE_LIMIT: Final = 1024


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> datetime:
    return datetime.now(UTC)


def current(resource: Obj) -> Obj:
    status = resource.get("status")
    return status if isinstance(status, dict) else {}


def phase(resource: Obj) -> str:
    return str(current(resource).get("phase") or "")


def is_terminal(resource: Obj) -> bool:
    return phase(resource) in TERMINAL_PHASES


def generation(resource: Obj) -> int:
    return int((resource.get("metadata") or {}).get("generation") or 0)


def get_condition(status: Obj, kind: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


class StatusBuilder:
    """A new status derived from the current one; `changed` says whether writing it is worth a request."""

    def __init__(self, resource: Obj, now: datetime) -> None:
        self._before = current(resource)
        self.status: Obj = copy.deepcopy(self._before)
        self._generation = generation(resource)
        self._now = now
        self.status["observedGeneration"] = self._generation

    def set_condition(self, kind: str, value: str, reason: str, message: str) -> StatusBuilder:
        conditions: list[Obj] = [c for c in self.status.get("conditions") or [] if isinstance(c, dict)]
        old = next((c for c in conditions if c.get("type") == kind), None)
        changed_at = timestamp(self._now)
        if old is not None and old.get("status") == value and old.get("lastTransitionTime"):
            changed_at = str(old["lastTransitionTime"])
        new = {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message[:MESSAGE_LIMIT],
            "lastTransitionTime": changed_at,
            "observedGeneration": self._generation,
        }
        rest = [c for c in conditions if c.get("type") != kind]
        self.status["conditions"] = sorted([*rest, new], key=_condition_order)
        return self

    def set(self, field: str, value: Any) -> StatusBuilder:
        self.status[field] = value
        return self

    def set_once(self, field: str, value: Any) -> StatusBuilder:
        """Set a field that must not move once written (startTime, completionTime)."""
        self.status.setdefault(field, value)
        return self

    @property
    def changed(self) -> bool:
        return self.status != self._before


def _condition_order(cond: Obj) -> int:
    kind = cond.get("type")
    return CONDITION_TYPES.index(kind) if kind in CONDITION_TYPES else len(CONDITION_TYPES)
