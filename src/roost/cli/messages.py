"""``roost command``, ``roost notify`` and ``roost mailbox``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from rich.table import Table
from rich.text import Text

from roost.cli.connect import client_options, run
from roost.cli.output import b64, console, echo_json, text_of

PAYLOAD_HELP = "PAYLOAD is sent as UTF-8 text; '-' reads raw bytes from standard input."


def read_payload(payload: str | None) -> bytes:
    if payload is None:
        return b""
    if payload == "-":
        return sys.stdin.buffer.read()
    return payload.encode()


@click.command("command", epilog=PAYLOAD_HELP)
@click.argument("device")
@click.argument("name")
@click.argument("payload", required=False)
@click.option("--ttl", type=float, help="Seconds it may wait in the mailbox.")
@click.option(
    "--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the answer."
)
@click.option("--no-wait", is_flag=True, help="Only queue it; print its id.")
@click.option("--content-type", help="Content type of the payload.")
@click.option("--json", "as_json", is_flag=True)
@client_options
def command(
    device: str,
    name: str,
    payload: str | None,
    ttl: float | None,
    wait: float,
    no_wait: bool,
    content_type: str | None,
    as_json: bool,
) -> None:
    """Send command NAME to DEVICE and print its answer."""
    body = read_payload(payload)
    waiting = None if no_wait else wait
    response = run(
        lambda s: s.command(device, name, body, ttl=ttl, wait=waiting, content_type=content_type)
    )
    if as_json:
        echo_json({"id": response.id, "status": response.status, "payload": b64(response.payload)})
    elif response.status is None:
        click.echo(response.id)
    else:
        console().print(f"status: {response.status}", markup=False)
        click.echo(text_of(response.payload))


@click.command("notify", epilog=PAYLOAD_HELP)
@click.option("--device", "-d", help="Notify this device.")
@click.option("--group", "-g", help="Notify every member of this group.")
@click.option("--all", "everyone", is_flag=True, help="Notify every device.")
@click.argument("topic")
@click.argument("payload", required=False)
@click.option("--ttl", type=float, help="Seconds it stays deliverable.")
@click.option("--content-type", help="Content type of the payload.")
@client_options
def notify(
    device: str | None,
    group: str | None,
    everyone: bool,
    topic: str,
    payload: str | None,
    ttl: float | None,
    content_type: str | None,
) -> None:
    """Send a notification on TOPIC to a device, a group or all; print its id."""
    if sum([device is not None, group is not None, everyone]) != 1:
        raise click.UsageError("give exactly one of --device, --group or --all")
    body = read_payload(payload)
    if device is not None:
        message_id = run(
            lambda s: s.notify(device, topic, body, ttl=ttl, content_type=content_type)
        )
    elif group is not None:
        message_id = run(
            lambda s: s.notify_group(group, topic, body, ttl=ttl, content_type=content_type)
        )
    else:
        message_id = run(lambda s: s.broadcast(topic, body, ttl=ttl, content_type=content_type))
    click.echo(message_id)


@click.group("mailbox")
def mailbox() -> None:
    """Look into or empty a device's mailbox."""


@mailbox.command("show")
@click.argument("device")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
def show(device: str, as_json: bool) -> None:
    """List the messages waiting for DEVICE."""
    messages = run(lambda s: s.mailbox(device))
    if as_json:
        for m in messages:
            echo_json(
                {
                    "id": m.id,
                    "kind": m.kind,
                    "name": m.name,
                    "ref": m.ref,
                    "payload": b64(m.payload),
                    "content_type": m.content_type,
                    "created_at": m.created_at,
                    "expires_at": m.expires_at,
                    "group": m.group,
                    "attempts": m.attempts,
                }
            )
        return
    table = Table("id", "kind", "name", "group", "expires", "attempts", "payload")
    for m in messages:
        expires = datetime.fromtimestamp(m.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            m.id,
            m.kind,
            m.name,
            m.group or "",
            expires,
            str(m.attempts),
            Text(text_of(m.payload)[:30]),
        )
    out = console()
    out.print(table)
    out.print(f"{len(messages)} message(s)")


@mailbox.command("purge")
@click.argument("device")
@client_options
def purge(device: str) -> None:
    """Remove every message waiting for DEVICE (each gets a 'purged' outcome)."""
    purged = run(lambda s: s.purge_mailbox(device))
    console().print(f"Purged {purged} message(s) from {device}", markup=False)
