"""What a reconcile decides to do, as data: the decision is a pure function returning these,
and `operators.capability` carries them out in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class CreateJob:
    job: Obj


@dataclass(frozen=True)
class DeleteJob:
    name: str
    uid: str


@dataclass(frozen=True)
class AcquireLock:
    lease: Obj


@dataclass(frozen=True)
class ReleaseLock:
    name: str
    uid: str


@dataclass(frozen=True)
class WriteStatus:
    status: Obj


@dataclass(frozen=True)
class RecordEvent:
    type: str  # "Normal" or "Warning"
    reason: str
    note: str


@dataclass(frozen=True)
class Requeue:
    after: float


Action = CreateJob | DeleteJob | AcquireLock | ReleaseLock | WriteStatus | RecordEvent | Requeue
