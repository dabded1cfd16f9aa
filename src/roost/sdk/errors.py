"""HTTP error answers back into Roost's exception tree.

The API answers every error as ``{"error": code, "message": text, **detail}``;
the code picks the class (:data:`BY_CODE`, read off ``roost.errors`` so that it
cannot drift), the status picks one when the body is not Roost's (a proxy's
502 page), and the detail stays on the exception (``Timeout.detail["id"]``).
"""

from __future__ import annotations

import httpx

from roost import errors
from roost.errors import RoostError


def _codes() -> dict[str, type[RoostError]]:
    """Code -> class; where classes share a code, the most general one (nearest the root)."""
    found: dict[str, type[RoostError]] = {RoostError.code: RoostError}
    level: list[type[RoostError]] = [RoostError]
    while level:
        level = [sub for cls in level for sub in cls.__subclasses__()]
        for cls in level:
            if cls.__module__ == errors.__name__:
                found.setdefault(cls.code, cls)
    return found


BY_CODE: dict[str, type[RoostError]] = _codes()
BY_STATUS: dict[int, type[RoostError]] = {
    400: errors.ProtocolError,
    401: errors.AuthError,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    422: errors.InvalidInput,
    429: errors.RateLimited,
    503: errors.Unavailable,
    504: errors.Timeout,
}


def error_from_response(response: httpx.Response) -> RoostError:
    """The exception an error response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        cls = BY_STATUS.get(response.status_code, RoostError)
        text = response.text.strip()[:200] or response.reason_phrase
        return _make(cls, f"HTTP {response.status_code}: {text}", response.status_code, {})
    code: str = body["error"]
    message = str(body.get("message") or code)
    detail = {k: v for k, v in body.items() if k not in ("error", "message")}
    cls = BY_CODE.get(code) or BY_STATUS.get(response.status_code, RoostError)
    error = _make(cls, message, response.status_code, detail)
    if cls.code != code:  # a code this SDK does not know: keep it as sent
        error.code = code
    return error


def _make(
    cls: type[RoostError], message: str, status: int, detail: dict[str, object]
) -> RoostError:
    error = cls(message, **detail)
    error.http_status = status
    return error
