"""The broker protocol's shared vocabulary: states, outcomes, limits and name rules.

`agent/openapi.yaml` is the written contract; the broker and the client both import
these values so that the two sides cannot drift apart on a limit or a spelling.
"""

from __future__ import annotations

import re
from typing import Final

API_PREFIX: Final = "/v1"

# Item states: queued -> claimed -> done (an expired or released lease goes back to queued).
QUEUED: Final = "queued"
CLAIMED: Final = "claimed"
DONE: Final = "done"
STATES: Final = (QUEUED, CLAIMED, DONE)

# Outcomes an agent reports; "cancelled" is set by the broker alone, for an item
# cancelled before any agent held it (or whose holder let the lease lapse).
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
UNKNOWN: Final = "unknown"
CANCELLED: Final = "cancelled"
REPORTABLE_OUTCOMES: Final = (SUCCEEDED, FAILED, UNKNOWN)
OUTCOMES: Final = (*REPORTABLE_OUTCOMES, CANCELLED)

# Client-chosen item ids travel in URL paths: no slash, no percent, bounded.
ITEM_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~-]{0,127}")
# Capability names are DNS labels ("build", "test", "migrate", or a catalog's own).
CAPABILITY_PATTERN: Final = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
# The holder name an agent claims under: its pod name in practice.
AGENT_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")

MAX_REQUEST_BYTES: Final = 256 * 1024
MAX_JSON_DEPTH: Final = 32
MAX_CLAIM_ITEMS: Final = 100
MAX_CLAIM_CAPABILITIES: Final = 32
MIN_LEASE_SECONDS: Final = 1
MAX_LEASE_SECONDS: Final = 3600
DEFAULT_LEASE_SECONDS: Final = 60
MAX_LIST_LIMIT: Final = 1000
DEFAULT_LIST_LIMIT: Final = 100
MAX_MESSAGE_CHARS: Final = 1024

# Error codes in {"error": {"code": ..., "message": ...}}.
E_BAD_JSON: Final = "bad_json"
E_INVALID: Final = "invalid_request"
E_TOO_LARGE: Final = "body_too_large"
E_UNAUTHORIZED: Final = "unauthorized"
E_NOT_FOUND: Final = "not_found"
E_METHOD: Final = "method_not_allowed"
E_ID_CONFLICT: Final = "id_conflict"
E_LEASE_EXPIRED: Final = "lease_expired"
E_LEASE_MISMATCH: Final = "lease_mismatch"
E_NOT_CLAIMED: Final = "not_claimed"
E_OUTCOME_CONFLICT: Final = "outcome_conflict"
E_UNAVAILABLE: Final = "unavailable"
E_INTERNAL: Final = "internal"


def valid_item_id(value: object) -> bool:
    return isinstance(value, str) and ITEM_ID_PATTERN.fullmatch(value) is not None


def valid_capability(value: object) -> bool:
    return isinstance(value, str) and CAPABILITY_PATTERN.fullmatch(value) is not None


def valid_agent(value: object) -> bool:
    return isinstance(value, str) and AGENT_PATTERN.fullmatch(value) is not None
