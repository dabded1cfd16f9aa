"""The outcomes stream: what became of each service-to-device message.

One stream, one subject; an outcome's ``seq`` is its stream sequence, so readers
page by it on any node. Old outcomes go by ``trim`` (each sweep) and, as a
safety net, by the stream's ``max_age``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing

from nats.js.api import StreamConfig

from roost.backplane.nats import messages, signals
from roost.backplane.nats.codec import loads, outcome_from_json, outcome_to_json
from roost.backplane.nats.context import ApiError, Ctx, ensure_stream
from roost.errors import Unavailable
from roost.model import Outcome

TRIM_BATCH = 32  # outcomes read per request while looking for the first one to keep


def _stream(ctx: Ctx) -> str:
    return ctx.names.stream("outcomes")


def _subject(ctx: Ctx) -> str:
    return ctx.names.subject("out")


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the outcomes stream; idempotent."""
    await ensure_stream(ctx, StreamConfig(
        name=_stream(ctx),
        subjects=[_subject(ctx)],
        max_age=ctx.options.feedback_retention,
        duplicate_window=120.0,
    ))


async def stop(ctx: Ctx) -> None:
    """Nothing to release: the module keeps no tasks or subscriptions."""


async def record(ctx: Ctx, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Store the outcomes (pipelined, acks awaited), set their seqs, announce them.

    ``Nats-Msg-Id`` makes a retried call store each outcome once.
    """
    items = list(outcomes)
    if not items:
        return []
    subject = _subject(ctx)
    acks = await messages.store_many(ctx, [
        (subject, outcome_to_json(o), {"Nats-Msg-Id": _msg_id(o)}) for o in items])
    for o, ack in zip(items, acks, strict=True):
        if isinstance(ack, ApiError):
            raise Unavailable(f"could not record the outcome of {o.id!r}: {ack.description}")
        o.seq = ack
    return await signals.outcomes(ctx, items)


def _msg_id(o: Outcome) -> str:
    """One id per event: a message can have a DELIVERED outcome and a response, say."""
    return messages.header_value(f"{o.id}:{o.kind}:{o.outcome.value}:{o.at!r}")


async def read(ctx: Ctx, after_seq: int, limit: int) -> list[Outcome]:
    stored = await messages.read_some(ctx, _stream(ctx), _subject(ctx), after_seq, limit)
    return [outcome_from_json(m.data, m.seq) for m in stored]


async def trim(ctx: Ctx, before: float) -> int:
    """Drop the oldest outcomes up to the first one at or after ``before``; returns how many.

    A prefix of the stream goes (one purge), so an outcome stored after a newer
    one is kept until that one goes too; the age limit of the stream is the backstop.
    """
    stream, subject = _stream(ctx), _subject(ctx)
    keep = 0  # the first seq to keep; all before it go
    async with aclosing(messages.scan(ctx, stream, subject, 0, TRIM_BATCH)) as stored:
        async for m in stored:
            if loads(m.data).get("at", 0.0) >= before:
                break
            keep = m.seq + 1
    return 0 if keep == 0 else await messages.purge(ctx, stream, subject, keep)
