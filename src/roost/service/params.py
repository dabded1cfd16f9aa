"""Reading a request: query parameters, raw bodies and JSON bodies, each checked.

Every bad value raises :class:`InvalidInput` (422) naming the parameter; a body
over its limit raises :class:`PayloadTooLarge` (413) before it is all read.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from roost.errors import InvalidInput, PayloadTooLarge

_TRUE = {"true", "1", "yes", "on", ""}
_FALSE = {"false", "0", "no", "off"}


def query_float(
    request: Request,
    name: str,
    *,
    default: float | None = None,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float | None:
    """A number of seconds (``ttl``, ``wait``); ``default`` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum:g}" if maximum is not None else ""
        raise InvalidInput(f"query parameter {name!r} must be between {minimum:g}{upper}")
    return value


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidInput(f"query parameter {name!r} must be between {minimum} and {maximum}")
    return value


def query_bool(request: Request, name: str, *, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidInput(f"query parameter {name!r} must be true or false, not {raw!r}")


def query_str(request: Request, name: str, *, required: bool = False) -> str | None:
    raw = request.query_params.get(name)
    if raw is None and required:
        raise InvalidInput(f"query parameter {name!r} is required")
    return raw


def query_choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = request.query_params.get(name, default)
    if raw not in choices:
        raise InvalidInput(f"query parameter {name!r} must be one of {', '.join(choices)}")
    return raw


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    if not body.strip():
        raise InvalidInput("a JSON request body is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


def content_type(request: Request) -> str | None:
    """The body's Content-Type, kept as the message's content type (None when absent)."""
    value = request.headers.get("content-type", "").strip()
    return value or None
