"""The AdmissionReview v1 envelope: parse a review, call a handler, build the response.

A handler sees only the review's `request` (a plain dict, already checked for the fields
every handler relies on) and returns the fields of the response except `uid`:

    {"allowed": bool,
     "status": {"code": int, "message": str, "reason": str, ...},   # optional
     "patch": [RFC 6902 operations],                                 # optional, encoded here
     "warnings": [str, ...],                                          # optional
     "auditAnnotations": {str: str}}                                  # optional

`review(body, handler)` is the whole hot path the server runs per request; it never raises:
an envelope that cannot be understood is a 400 with a one-line reason, a handler failure is a
denial that names it.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import orjson

from common.jsonio import MAX_BODY_BYTES, BadJSON, loads_bounded

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"

Request = dict[str, Any]
Result = dict[str, Any]

# Outcomes the server counts; "bad_request" is a 400, the others are answered reviews.
ALLOWED: Final = "allowed"
PATCHED: Final = "patched"
DENIED: Final = "denied"
BAD_REQUEST: Final = "bad_request"
HANDLER_ERROR: Final = "handler_error"


class AdmissionHandler(Protocol):
    """Decides one admission request; must be pure apart from reading caches (dry-run safe)."""

    def __call__(self, request: Request) -> Result: ...


class BadReview(ValueError):
    """The body is not an AdmissionReview this server can answer; the message says why in one line."""

    def __init__(self, message: str, kind: str = "bad_review") -> None:
        super().__init__(message)
        self.kind = kind


def allow(
    *,
    patch: Sequence[Mapping[str, Any]] | None = None,
    warnings: Sequence[str] | None = None,
    audit_annotations: Mapping[str, str] | None = None,
) -> Result:
    result: Result = {"allowed": True}
    if patch:
        result["patch"] = list(patch)
    if warnings:
        result["warnings"] = list(warnings)
    if audit_annotations:
        result["auditAnnotations"] = dict(audit_annotations)
    return result


def deny(
    message: str,
    *,
    code: int = 403,
    reason: str = "Forbidden",
    details: Mapping[str, Any] | None = None,
    warnings: Sequence[str] | None = None,
    audit_annotations: Mapping[str, str] | None = None,
) -> Result:
    status: dict[str, Any] = {"code": code, "reason": reason, "message": message}
    if details:
        status["details"] = dict(details)
    result: Result = {"allowed": False, "status": status}
    if warnings:
        result["warnings"] = list(warnings)
    if audit_annotations:
        result["auditAnnotations"] = dict(audit_annotations)
    return result


def bad_object(message: str) -> Result:
    """A denial for a review whose envelope is fine but whose object this handler cannot read."""
    return deny(message, code=400, reason="BadRequest")


def parse_review(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> Request:
    """The `request` of an AdmissionReview v1 body, or BadReview naming what is wrong."""
    try:
        review = loads_bounded(body, max_bytes=max_bytes)
    except BadJSON as exc:
        raise BadReview(str(exc), kind="bad_json") from None
    if type(review) is not dict:
        raise BadReview(f"an AdmissionReview must be a JSON object, got {_json_type(review)}")
    api_version = review.get("apiVersion")
    if api_version != API_VERSION:
        raise BadReview(f"apiVersion must be {API_VERSION!r}, got {_show(api_version)}")
    kind = review.get("kind")
    if kind != KIND:
        raise BadReview(f"kind must be {KIND!r}, got {_show(kind)}")
    request = review.get("request")
    if type(request) is not dict:
        what = "missing" if request is None else f"a {_json_type(request)}"
        raise BadReview(f"request must be a JSON object, it is {what}")
    uid = request.get("uid")
    if type(uid) is not str or not uid:
        raise BadReview(f"request.uid must be a non-empty string, got {_show(uid)}")
    return request


_REVIEW_HEAD: Final = orjson.dumps({"apiVersion": API_VERSION, "kind": KIND})[:-1] + b',"response":'
_PATCH_TYPE: Final = b',"patchType":"JSONPatch","patch":"'


def encode_response(uid: str, result: Result) -> bytes:
    """The AdmissionReview answering `uid`; a list `patch` becomes a base64 JSONPatch.

    Assembled as bytes around one orjson.dumps of the response's small fields (uid first,
    then the result's fields, then patchType and patch, as the keys always came out).
    """
    patch = result.get("patch")
    if patch and len(result) == 2 and result.get("allowed") is True:  # the usual injection
        fields = b'{"uid":' + orjson.dumps(uid) + b',"allowed":true'
    else:
        response = {"uid": uid}
        for key, value in result.items():
            if key != "patch":
                response[key] = value
        if not patch:
            return _REVIEW_HEAD + orjson.dumps(response) + b"}"
        fields = orjson.dumps(response)[:-1]
    # base64 needs no JSON escaping: it goes between the quotes as it is.
    encoded = b2a_base64(orjson.dumps(patch), newline=False)
    return b"".join((_REVIEW_HEAD, fields, _PATCH_TYPE, encoded, b'"}}'))


def outcome(result: Result) -> str:
    if not result.get("allowed"):
        return DENIED
    return PATCHED if result.get("patch") else ALLOWED


class Answer:
    """What `review` hands back to the server: HTTP status, body and what to count."""

    __slots__ = ("body", "error_kind", "outcome", "status")

    def __init__(self, status: int, body: bytes, outcome: str, error_kind: str | None = None) -> None:
        self.status = status
        self.body = body
        self.outcome = outcome
        self.error_kind = error_kind


def review(body: bytes, handler: AdmissionHandler, *, max_bytes: int = MAX_BODY_BYTES) -> Answer:
    """Answer one AdmissionReview body with `handler`; never raises."""
    try:
        request = parse_review(body, max_bytes=max_bytes)
    except BadReview as exc:
        return bad_request(str(exc), exc.kind)
    return answer(request, handler)


def answer(request: Request, handler: AdmissionHandler) -> Answer:
    """Answer a parsed request (see parse_review) with `handler`; never raises."""
    uid: str = request["uid"]
    try:
        result = handler(request)
    except Exception as exc:  # a handler bug must not become a 500 or a dead worker
        message = f"internal error while handling the request: {type(exc).__name__}: {exc}"
        denial = deny(message, code=500, reason="InternalError")
        return Answer(200, encode_response(uid, denial), DENIED, HANDLER_ERROR)
    return Answer(200, encode_response(uid, result), outcome(result))


def bad_request(message: str, kind: str) -> Answer:
    return Answer(400, orjson.dumps({"error": message}), BAD_REQUEST, kind)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any) -> str:
    """A short rendering of an unexpected value for an error message."""
    if value is None:
        return "nothing"
    text = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."
