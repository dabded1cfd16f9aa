"""``roost cluster``: set up and inspect the cluster backplane's streams and buckets.

These talk to NATS directly (not to a node), with the same ``--nats``,
``--nats-prefix`` and ``--nats-replicas`` settings as ``roost serve`` (also from
``--config`` and ``ROOST_NATS`` ...), so an operator never needs NATS tooling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from roost.cli.output import console, echo_json, fail
from roost.config import Settings, load_settings
from roost.errors import RoostError
from roost.node import make_backplane

T = TypeVar("T")


def nats_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                     help="A TOML file (the same as roost serve's)."),
        click.option("--nats", help="NATS URLs, comma-separated (ROOST_NATS)."),
        click.option("--nats-prefix", help="Prefix of Roost's streams and buckets (roost)."),
        click.option("--nats-replicas", type=click.IntRange(1, 5),
                     help="Replicas for streams created now."),
    ]):
        func = option(func)
    return func


def _settings(config: Path | None, nats: str | None, prefix: str | None,
              replicas: int | None) -> Settings:
    try:
        settings = load_settings(config, None, {"nats": nats, "nats_prefix": prefix,
                                                "nats_replicas": replicas, "node": "cli"})
    except RoostError as exc:
        fail(exc.message, 2)
    if not settings.nats:
        fail("no NATS servers: pass --nats nats://host:4222[,...] or set ROOST_NATS", 2)
    return settings


def _with_backplane(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        backplane = make_backplane(settings)
        await backplane.start()
        try:
            return await work(backplane)
        finally:
            await backplane.close()

    try:
        return asyncio.run(main())
    except RoostError as exc:
        fail(exc.message, 1)


@click.group("cluster")
def cluster() -> None:
    """Set up and inspect the cluster backplane (NATS JetStream)."""


@cluster.command("setup")
@nats_options
def setup(config: Path | None, nats: str | None, nats_prefix: str | None,
          nats_replicas: int | None) -> None:
    """Create or upgrade Roost's streams and buckets (roost serve does this on start too)."""
    from roost.backplane.nats import admin

    settings = _settings(config, nats, nats_prefix, nats_replicas)
    states = _with_backplane(settings, lambda bp: admin.streams(bp.ctx))
    console().print(f"{len(states)} streams and buckets ready under prefix "
                    f"{settings.nats_prefix!r}", markup=False)


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@nats_options
def status(as_json: bool, config: Path | None, nats: str | None, nats_prefix: str | None,
           nats_replicas: int | None) -> None:
    """Show Roost's streams and buckets: messages, size, replicas, leader."""
    from dataclasses import asdict

    from roost.backplane.nats import admin

    settings = _settings(config, nats, nats_prefix, nats_replicas)
    states = _with_backplane(settings, lambda bp: admin.streams(bp.ctx))
    if as_json:
        for s in states:
            echo_json(asdict(s))
        return
    table = Table("name", "kind", "messages", "bytes", "consumers", "replicas", "leader")
    for s in states:
        health = f"{s.replicas_current}/{s.replicas}"
        table.add_row(s.name, s.kind, str(s.messages), str(s.bytes), str(s.consumers), health,
                      s.leader or "-")
    console().print(table)
