"""How client commands reach a node: ``--url``, ``--token``, and running the SDK call.

Every client command takes ``--url`` (``ROOST_URL``, default
``http://127.0.0.1:8080``) and ``--token`` (``ROOST_TOKEN``). Without a token,
the admin token a local node wrote is used: ``--data-dir``'s ``admin.token``
(``ROOST_DATA_DIR``), else ``./roost-data/admin.token``.

Tests hand an httpx transport in ``ctx.obj["transport"]``, so the commands can
run against an app without a socket.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from roost.cli.output import fail_on
from roost.errors import RoostError
from roost.sdk import Service

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path("roost-data")
TOKEN_FILE = "admin.token"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"roost.{param.name}"] = value
    return value


def client_options(command: F) -> F:
    """Add ``--url``, ``--token`` and ``--data-dir`` to a client command."""
    options = [
        click.option(
            "--url",
            envvar="ROOST_URL",
            default=DEFAULT_URL,
            show_default=True,
            expose_value=False,
            callback=_remember,
            help="The node's HTTP API (env ROOST_URL).",
        ),
        click.option(
            "--token",
            envvar="ROOST_TOKEN",
            expose_value=False,
            callback=_remember,
            help="API token (env ROOST_TOKEN); default: DATA_DIR/admin.token.",
        ),
        click.option(
            "--data-dir",
            envvar="ROOST_DATA_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            expose_value=False,
            callback=_remember,
            help="A local node's data directory, to read its admin.token.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def find_token(token: str | None, data_dir: Path | None) -> str:
    if token:
        return token
    path = (data_dir or DEFAULT_DATA_DIR) / TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError:
        raise click.UsageError(
            f"no API token: use --token or ROOST_TOKEN (no readable {path})"
        ) from None


def open_service(ctx: click.Context) -> Service:
    meta = ctx.meta
    token = find_token(meta.get("roost.token"), meta.get("roost.data_dir"))
    url = meta.get("roost.url") or DEFAULT_URL
    transport = (ctx.find_root().obj or {}).get("transport")
    return Service(url, token, transport=transport)


def run(call: Callable[[Service], Awaitable[T]]) -> T:
    """Run ``call`` with a Service for the current command; API errors end it with exit 1."""
    service = open_service(click.get_current_context())

    async def session() -> T:
        async with service:
            return await call(service)

    try:
        return asyncio.run(session())
    except RoostError as error:
        fail_on(error)
    except KeyboardInterrupt:
        sys.exit(130)
