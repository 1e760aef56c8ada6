"""The one error the broker raises for a request it will not carry out, and its JSON form."""

from __future__ import annotations

from typing import Any

from agent import protocol


class Problem(Exception):
    """A request the broker refuses: an HTTP status, a stable code and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message[: protocol.MAX_MESSAGE_CHARS]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def invalid(message: str) -> Problem:
    return Problem(400, protocol.E_INVALID, message)


def not_found(item_id: str) -> Problem:
    return Problem(404, protocol.E_NOT_FOUND, f"no item with id {item_id!r}")
