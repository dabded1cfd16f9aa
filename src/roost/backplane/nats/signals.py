"""Signals between nodes: every node hears every signal, its own included.

Two sources, both turned into :class:`Signal` on the node's ``SignalBus``:

* ``<prefix>.sig.<kind>[.<key token>]`` — core NATS messages a node publishes
  right after a durable write (OUTCOME carries the outcome's JSON, KICK the
  new owner). At-most-once: a node that dies between its write and this publish
  loses the signal, never the data.
* ``<prefix>.wake.mbx.<shard>.<device>`` and ``<prefix>.wake.grp.<group>`` —
  the mailbox and group streams' RePublish (headers only), which JetStream
  sends as part of storing the message, so a stored message always wakes its
  device's link wherever it is.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from roost.backplane.base import Signal, SignalKind
from roost.backplane.nats.codec import outcome_from_json, outcome_to_json
from roost.backplane.nats.context import Ctx
from roost.backplane.nats.names import token, untoken
from roost.model import Outcome

log = logging.getLogger(__name__)

_KINDS = {kind.value: kind for kind in SignalKind}


def wake_subject(ctx: Ctx, stream_subject_tail: str) -> str:
    """The RePublish destination for a stream subject ``<prefix>.<tail>``."""
    return ctx.names.subject("wake", stream_subject_tail)


async def announce(ctx: Ctx, *signals: Signal) -> None:
    """Publish signals to every node (this one included); call after the durable write."""
    for signal in signals:
        parts: list[str] = ["sig", signal.kind.value]
        if signal.key:
            parts.append(token(signal.key))
        data = b""
        if signal.kind is SignalKind.OUTCOME and isinstance(signal.data, Outcome):
            data = outcome_to_json(signal.data)
        elif signal.kind is SignalKind.KICK and isinstance(signal.data, str):
            data = signal.data.encode()
        await ctx.nc.publish(ctx.names.subject(*parts), data)


async def outcomes(ctx: Ctx, items: list[Outcome]) -> list[Outcome]:
    """Announce one OUTCOME signal per outcome; returns ``items``."""
    await announce(ctx, *(Signal(SignalKind.OUTCOME, o.id, o) for o in items))
    return items


def decode(ctx: Ctx, subject: str, data: bytes) -> Signal | None:
    parts = subject.split(".")[len(ctx.names.prefix.split(".")):]
    if len(parts) >= 2 and parts[0] == "sig":
        kind = _KINDS.get(parts[1])
        if kind is None:
            return None
        key = untoken(parts[2]) if len(parts) > 2 else ""
        payload: object = None
        if kind is SignalKind.OUTCOME and data:
            payload = outcome_from_json(data)
        elif kind is SignalKind.KICK:
            payload = data.decode()
        return Signal(kind, key, payload)
    if len(parts) >= 3 and parts[0] == "wake":
        if parts[1] == "mbx":
            return Signal(SignalKind.MAILBOX, untoken(parts[-1]))
        if parts[1] == "grp":
            return Signal(SignalKind.GROUP, untoken(parts[-1]))
    return None


WOKEN_MAX = 100_000  # subjects remembered per node; beyond, the memory starts afresh


def note_wake(ctx: Ctx, stream_subject: str, msg: Msg) -> None:
    """Remember the sequence a wake-up announced (read after it must see it)."""
    try:
        seq = int((msg.headers or {}).get("Nats-Sequence", "0"))
    except ValueError:
        return
    if len(ctx.woken) >= WOKEN_MAX:
        ctx.woken.clear()
    if seq > ctx.woken.get(stream_subject, 0):
        ctx.woken[stream_subject] = seq


async def listen(ctx: Ctx) -> list[Subscription]:
    """Subscribe this node to all signals; returns the subscriptions (to unsubscribe)."""

    async def on_msg(msg: Msg) -> None:
        try:
            signal = decode(ctx, msg.subject, msg.data)
        except Exception:  # a malformed signal must not stop the others
            log.exception("dropping malformed signal on %s", msg.subject)
            return
        if signal is None:
            return
        if msg.subject.startswith(wake_prefix):
            note_wake(ctx, ctx.names.prefix + "." + msg.subject[len(wake_prefix):], msg)
        ctx.signals.emit(signal)

    wake_prefix = ctx.names.subject("wake", "")

    return [
        await ctx.nc.subscribe(ctx.names.subject("sig", ">"), cb=on_msg),
        await ctx.nc.subscribe(ctx.names.subject("wake", ">"), cb=on_msg),
    ]
