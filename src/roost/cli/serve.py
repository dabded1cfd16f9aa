"""``roost serve``: run one node until SIGINT or SIGTERM, then stop it cleanly (exit 0).

Settings come from defaults < ``--config`` TOML < ``ROOST_*`` environment < flags.
A bad setting is one line on stderr and exit 2; a node that cannot start (a
port in use, an unusable data directory) is one line and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from roost.cli.output import fail
from roost.config import Settings, load_settings
from roost.errors import RoostError
from roost.node import Node
from roost.service.longpoll import close_all

LOG_LEVELS = ("debug", "info", "warning", "error")
# The event loop shares the GIL with the SQLite threads; when one of them holds it, the
# loop waits up to this long for its turn. Python's 5 ms default put that wait straight
# into command round trips (p50 3.0 -> 2.6 ms at 1,000/s; ingest unchanged at ~247k/s).
GIL_SWITCH_INTERVAL = 0.001


def event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's runner where it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def announce(node: Node) -> None:
    s = node.settings
    host = url_host(s.host)
    click.echo(f"Roost node {s.node} is serving")
    click.echo(f"  MQTT  mqtt://{host}:{node.mqtt_port}")
    click.echo(f"  HTTP  http://{host}:{node.http_port}")
    if s.nats:
        click.echo(f"  backplane  NATS JetStream at {s.nats} (prefix {s.nats_prefix!r})")
    else:
        click.echo(f"  backplane  SQLite at {s.db_path}")
    if node.admin_token_path is not None:
        click.echo(f"  admin token written to {node.admin_token_path}")
    elif s.admin_token_file is not None or s.admin_token:
        click.echo("  admin token: the preset one")
    else:
        click.echo(f"  admin token: created earlier (see {s.data_dir / 'admin.token'})")


class StartFailed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def serve_until_signal(settings: Settings) -> None:
    try:
        node = Node(settings)
    except RoostError as exc:
        raise StartFailed(exc.message, 2) from None
    except OSError as exc:
        raise StartFailed(f"cannot start: {exc}", 1) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except (OSError, RoostError) as exc:
        with contextlib.suppress(Exception):
            await node.stop()
        raise StartFailed(f"cannot start: {exc}", 1) from None
    announce(node)
    # What start-up allocated lives as long as the process: keep it out of the collector's
    # full passes, which otherwise paused the loop ~14 ms every 10-20 s at 1,000 commands/s
    gc.freeze()
    await stop.wait()
    click.echo("stopping", err=True)
    close_all()  # answer long polls now, so the HTTP server need not wait for them
    await node.stop()


@click.command("serve")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="A TOML file.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--mqtt-port", type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--http-port", type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use the admin token in this file instead of creating one.",
)
@click.option("--nats", help="Run on the cluster backplane: NATS URLs, comma-separated.")
@click.option("--nats-prefix", help="Prefix of Roost's streams, buckets and subjects (roost).")
@click.option("--nats-replicas", type=click.IntRange(1, 5),
              help="JetStream replicas per stream (3 on a 3-server cluster).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False))
def serve(
    config: Path | None,
    data_dir: Path | None,
    host: str | None,
    mqtt_port: int | None,
    http_port: int | None,
    admin_token_file: Path | None,
    nats: str | None,
    nats_prefix: str | None,
    nats_replicas: int | None,
    log_level: str | None,
) -> None:
    """Run a Roost node: MQTT for devices, the HTTP API for services."""
    overrides = {
        "data_dir": data_dir,
        "host": host,
        "mqtt_port": mqtt_port,
        "http_port": http_port,
        "admin_token_file": admin_token_file,
        "nats": nats,
        "nats_prefix": nats_prefix,
        "nats_replicas": nats_replicas,
        "log_level": log_level,
    }
    try:
        settings = load_settings(config, None, overrides)
    except RoostError as exc:
        fail(exc.message, 2)
    level = settings.log_level.lower()
    if level not in LOG_LEVELS:
        fail(f"setting log_level: {settings.log_level!r} is not one of {', '.join(LOG_LEVELS)}", 2)
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        event_loop_runner()(serve_until_signal(settings))
    except StartFailed as exc:
        fail(str(exc), exc.exit_code)
