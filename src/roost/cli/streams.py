"""``roost telemetry`` and ``roost feedback``: read a stream, once or with ``--follow``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from roost.cli.connect import client_options, run
from roost.cli.output import b64, echo_json, text_of
from roost.sdk import Outcome, Record, Service

BATCH = 100


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def print_record(r: Record, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "seq": r.seq,
                "device": r.device,
                "path": r.path,
                "payload": b64(r.payload),
                "content_type": r.content_type,
                "received_at": r.received_at,
            }
        )
    else:
        click.echo(
            f"{r.seq}  {stamp(r.received_at)}  {r.device}  {r.path or '-'}  {text_of(r.payload)}"
        )


@click.command("telemetry")
@click.option("--group", "-g", required=True, help="Consumer group to read in.")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new records.")
@click.option(
    "--from",
    "start",
    type=click.Choice(["earliest", "latest"]),
    default="earliest",
    show_default=True,
    help="Where a new consumer group starts.",
)
@click.option("--max", "max_records", type=click.IntRange(min=1), help="Stop after N records.")
@click.option("--wait", type=float, default=30.0, show_default=True, help="Long-poll seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
def telemetry(
    group: str,
    follow: bool,
    start: str,
    max_records: int | None,
    wait: float,
    as_json: bool,
) -> None:
    """Print telemetry records of consumer group GROUP, acking each batch once printed.

    Without --follow it stops when no record is waiting. Records are consumed:
    another reader in the same group will not get them (use another group).
    """

    async def consume(s: Service) -> None:
        remaining = max_records
        while remaining is None or remaining > 0:
            # never fetch more than will be printed: a batch is acked whole
            size = BATCH if remaining is None else min(BATCH, remaining)
            batch = await s.fetch_telemetry(
                group, max=size, wait=wait if follow else 0.0, from_latest=start == "latest"
            )
            for record in batch.records:
                print_record(record, as_json)
            if batch.ack is not None:
                await s.ack_telemetry(group, batch.ack)
            if remaining is not None:
                remaining -= len(batch.records)
            if not batch.records and not follow:
                return

    run(consume)


def print_outcome(o: Outcome, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "seq": o.seq,
                "id": o.id,
                "device": o.device,
                "kind": o.kind,
                "name": o.name,
                "outcome": o.outcome,
                "at": o.at,
                "group": o.group,
                "status": o.status,
                "payload": b64(o.payload),
                "reason": o.reason,
            }
        )
        return
    target = o.device or (f"group:{o.group}" if o.group else "-")
    extra = f"status={o.status}" if o.status is not None else (o.reason or "")
    click.echo(
        f"{o.seq}  {stamp(o.at)}  {o.outcome:<9}  {o.kind:<12}  {o.id}  {target}  {extra}".rstrip()
    )


@click.command("feedback")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this cursor.")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new outcomes.")
@click.option("--wait", type=float, default=30.0, show_default=True, help="Long-poll seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
def feedback(after: int, follow: bool, wait: float, as_json: bool) -> None:
    """Print message outcomes (delivered, expired, rejected, purged, responses)."""

    async def read(s: Service) -> None:
        async for outcome in s.follow_feedback(
            after=after, limit=1000, wait=wait if follow else 0.0, follow=follow
        ):
            print_outcome(outcome, as_json)

    run(read)
