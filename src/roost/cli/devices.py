"""``roost device``: add, list, show, remove, rotate-key, enable, disable, import."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from roost.cli.connect import client_options, run
from roost.cli.output import console, echo_json, fail
from roost.errors import RoostError
from roost.sdk import DeviceInfo, Service

IMPORT_CHUNK = 5000


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def device_json(d: DeviceInfo) -> dict[str, Any]:
    return {
        "id": d.id,
        "groups": list(d.groups),
        "metadata": d.metadata,
        "enabled": d.enabled,
        "created_at": d.created_at,
        "connected": d.connected,
        "last_seen": d.last_seen,
        "mailbox_depth": d.mailbox_depth,
    }


def parse_meta(items: tuple[str, ...]) -> dict[str, str]:
    meta = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        meta[key] = value
    return meta


@click.group("device")
def device() -> None:
    """Register and manage devices."""


@device.command("add")
@click.argument("device_id", metavar="ID")
@click.option("--group", "-g", "groups", multiple=True, help="A group to join (repeatable).")
@click.option("--meta", "-m", multiple=True, help="Metadata KEY=VALUE (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@client_options
def add(device_id: str, groups: tuple[str, ...], meta: tuple[str, ...], as_json: bool) -> None:
    """Register device ID and print its key (shown only this once)."""
    metadata = parse_meta(meta)
    created = run(lambda s: s.register_device(device_id, groups=groups, metadata=metadata))
    if as_json:
        echo_json(created)
        return
    out = console()
    out.print(f"Registered {created['id']}", markup=False)
    out.print(f"key: {created['key']}", markup=False)
    out.print("Keep the key: it is not shown again (roost device rotate-key makes a new one).")


@device.command("list")
@click.option("--group", "-g", help="Only members of this group.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
def list_devices(group: str | None, as_json: bool) -> None:
    """List devices in id order."""

    async def collect(s: Service) -> list[DeviceInfo]:
        return [d async for d in s.list_devices(group=group, page_size=1000)]

    devices = run(collect)
    if as_json:
        for d in devices:
            echo_json(device_json(d))
        return
    table = Table("id", "groups", "enabled", "connected", "last seen", "mailbox")
    for d in devices:
        table.add_row(
            d.id,
            ",".join(d.groups),
            "yes" if d.enabled else "no",
            "yes" if d.connected else "no",
            when(d.last_seen),
            str(d.mailbox_depth),
        )
    out = console()
    out.print(table)
    out.print(f"{len(devices)} device(s)")


@device.command("show")
@click.argument("device_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@client_options
def show(device_id: str, as_json: bool) -> None:
    """Show one device, with its connection and mailbox."""
    d = run(lambda s: s.get_device(device_id))
    if as_json:
        echo_json(device_json(d))
        return
    rows = [
        ("id", d.id),
        ("groups", ", ".join(d.groups) or "-"),
        ("metadata", json.dumps(d.metadata)),
        ("enabled", "yes" if d.enabled else "no"),
        ("created", when(d.created_at)),
        ("connected", "yes" if d.connected else "no"),
        ("last seen", when(d.last_seen)),
        ("mailbox", str(d.mailbox_depth)),
    ]
    out = console()
    for name, value in rows:
        out.print(f"{name + ':':<11}{value}", markup=False)


@device.command("remove")
@click.argument("device_id", metavar="ID")
@client_options
def remove(device_id: str) -> None:
    """Remove a device and its mailbox."""
    run(lambda s: s.remove_device(device_id))
    console().print(f"Removed {device_id}", markup=False)


@device.command("rotate-key")
@click.argument("device_id", metavar="ID")
@client_options
def rotate_key(device_id: str) -> None:
    """Give a device a new key; the old one stops working at once."""
    key = run(lambda s: s.rotate_key(device_id))
    console().print(f"key: {key}", markup=False)


def _set_enabled(device_id: str, enabled: bool) -> None:
    run(lambda s: s.update_device(device_id, enabled=enabled))
    console().print(f"{'Enabled' if enabled else 'Disabled'} {device_id}", markup=False)


@device.command("enable")
@click.argument("device_id", metavar="ID")
@client_options
def enable(device_id: str) -> None:
    """Let a device connect again."""
    _set_enabled(device_id, True)


@device.command("disable")
@click.argument("device_id", metavar="ID")
@client_options
def disable(device_id: str) -> None:
    """Refuse a device's connections (its mailbox is kept)."""
    _set_enabled(device_id, False)


# --- import ---------------------------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        fail(f"cannot read {path}: {exc}")
    if not rows or rows[0][:1] != ["id"]:
        fail(f"{path}: the first line must be the header id,groups[,key]")
    return rows[0], rows[1:]


def chunks(header: list[str], rows: list[list[str]], size: int) -> Iterator[tuple[int, str]]:
    for start in range(0, len(rows), size):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[start : start + size])
        yield len(rows[start : start + size]), buffer.getvalue()


@device.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--keys-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write id,key of the created devices here (mode 0600); default: standard output.",
)
@click.option("--chunk", default=IMPORT_CHUNK, show_default=True, help="Rows per request.")
@client_options
def import_devices(file: Path, keys_out: Path | None, chunk: int) -> None:
    """Register the devices of a CSV file (id,groups[,key]; groups split by ';').

    Existing ids are skipped and keep their keys.
    """
    header, rows = read_rows(file)
    keys: list[tuple[str, str]] = []
    totals = {"created": 0, "skipped": 0, "sent": 0}

    async def send(s: Service) -> RoostError | None:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(stderr=True),
        ) as progress:
            task = progress.add_task("import", total=len(rows))
            for count, text in chunks(header, rows, max(1, chunk)):
                try:
                    result = await s.import_devices(text)
                except RoostError as error:
                    return error  # keep the keys of the chunks already created
                keys.extend(result.keys)
                totals["created"] += result.created
                totals["skipped"] += result.skipped
                totals["sent"] += count
                progress.advance(task, count)
        return None

    error = run(send)
    write_keys(keys, keys_out)
    summary = f"Imported {totals['created']} device(s), skipped {totals['skipped']} existing"
    if keys_out is not None:
        summary += f"; keys written to {keys_out}"
    if error is not None:
        console(stderr=True).print(summary, markup=False)
        fail(f"stopped after {totals['sent']} of {len(rows)} rows: {error.message}")
    console(stderr=keys_out is None).print(summary, markup=False)


def write_keys(keys: list[tuple[str, str]], path: Path | None) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "key"])
    writer.writerows(keys)
    if path is None:
        click.echo(text.getvalue(), nl=False)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # also when the file was there before
        f.write(text.getvalue())
