"""Exceptions. Every error the node answers is an :class:`ApiError` carrying the API's stable
``code`` (``not_found``, ``invalid_input``, ``unauthorized``, ...); match on the code, never on
the message. The ancestor's exception names are kept as aliases or subclasses."""

from __future__ import annotations

from typing import Any


class AtrError(Exception):
    """Base of every error this package raises."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ApiError(AtrError):
    """An error answer of the node's API: ``code`` is its stable machine-readable code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 0,
        field: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}", code=code)
        self.message = message
        self.status = status
        self.field = field
        self.details = details


class Unreachable(AtrError):
    """The node's API could not be reached (not running, wrong ``ATR_API``)."""

    code = "unreachable"


class BadReceipt(AtrError):
    """A receipt (or signed object) that does not prove the answer it came with."""

    code = "bad_receipt"


class BadResponse(AtrError):
    """The node answered something that is not the API's shape."""

    code = "bad_response"


class SchemaError(AtrError, TypeError):
    """A type hint that has no exact JSON Schema; raised at decoration time."""

    code = "unsupported_hint"


class ValidationError(AtrError, ValueError):
    """Arguments that break a tool's input schema; ``violations`` lists ``(pointer, rule)``."""

    code = "invalid_input"

    def __init__(self, message: str, violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


class ToolNotFoundError(AtrError, KeyError):
    """No tool of that name (the ancestor's name)."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class ToolAlreadyExistsError(AtrError):
    """The same name and version registered twice with another function (the ancestor's name)."""

    code = "version_exists"


class ExecutorError(AtrError):
    """A tool run failed (the ancestor's name); ``status`` is the receipt's status when one exists."""

    code = "tool_error"

    def __init__(self, message: str, *, status: str | None = None, output: Any = None, receipt: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.output = output
        self.receipt = receipt


class ExecutionTimeoutError(ExecutorError):
    """A tool run hit its time limit (the ancestor's name)."""

    code = "timeout"


class ImageError(AtrError):
    """A Docker image could not be built or inspected."""

    code = "image_error"
