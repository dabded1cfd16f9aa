"""Terminal output: rich consoles that tests can pin, and how errors end a command.

On a terminal the consoles use its width and colours; anywhere else (a pipe,
a file, click's test runner) they are 100 columns wide, without colour or
highlighting, so the output is the same every time. Data (telemetry payloads,
keys, JSON) is written with ``click.echo``: rich would read ``[brackets]`` in
a payload as markup.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, NoReturn

import click
from rich.console import Console

from roost.errors import RoostError

PINNED_WIDTH = 100


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, stderr=stderr)
    return Console(
        file=stream,
        width=PINNED_WIDTH,
        color_system=None,
        highlight=False,
        force_terminal=False,
        soft_wrap=True,
    )


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":"), sort_keys=False))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    console(stderr=True).print(f"Error: {message}", markup=False)
    sys.exit(code)


def fail_on(error: RoostError) -> NoReturn:
    fail(error.message)


def b64(payload: bytes | None) -> str | None:
    return None if payload is None else base64.b64encode(payload).decode("ascii")


def text_of(payload: bytes | None) -> str:
    """A payload for a terminal line: its text if it is UTF-8, else its base64."""
    if payload is None:
        return ""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()
