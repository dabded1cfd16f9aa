"""Delivery to one device link, on the embedded store, where timing decides the outcome.

The hub is driven directly (no sockets): a :class:`Sink` stands in for the MQTT
connection (it is the hub's own ``DeviceSink`` interface), so a test can pause a
backplane read at the exact moment that matters: while an ack is being committed,
while the device subscribes, while its mailbox is purged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from backplane.helpers import held
from roost.hub.hub import Hub
from roost.hub.link import DeviceLink
from roost.model import MailboxMessage


class Sink:
    """What the MQTT side would do: take deliveries into a list, with a window."""

    def __init__(self, window: int = 32) -> None:
        self.window = window
        self.delivered: list[tuple[MailboxMessage, str]] = []
        self.unacked = 0

    def free_slots(self) -> int:
        return self.window - self.unacked

    def deliver(self, msg: MailboxMessage, topic: str, qos: int) -> None:
        self.delivered.append((msg, topic))
        self.unacked += qos

    def kick(self, reason: str) -> None:
        pass

    def payloads(self) -> list[bytes]:
        return [m.payload for m, _ in self.delivered]


async def connect(hub: Hub, device: str, *filters: str,
                  groups: tuple[str, ...] = ()) -> tuple[DeviceLink, Sink]:
    _, key = await hub.devices.register(device, groups=groups)
    sink = Sink()
    link, _ = await hub.links.open(device, key, sink, clean=True, session_expiry=0)
    await link.start_delivery()
    link.subscribe([(f, 1) for f in filters])
    return link, sink


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


class Gate:
    """Wraps a backplane read so that its answer waits until the test opens the gate."""

    def __init__(self, read: Callable[..., Awaitable[Any]]) -> None:
        self.read = read
        self.closed = True
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, *args: Any) -> Any:
        answer = await self.read(*args)
        if self.closed:
            self.entered.set()
            await self.opened.wait()
        return answer

    def open(self) -> None:
        self.closed = False
        self.opened.set()


async def test_an_acked_command_is_not_sent_again_when_a_subscription_rewinds(
    hub: Hub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PUBACK, then SUBSCRIBE: the rewound read may have begun before the ack's commit
    and still return the message; by the time it answers the ack has taken it out of
    the in-flight set. It must not go to the device a second time."""
    link, sink = await connect(hub, "d1", "devices/d1/commands/#")
    await hub.messages.command("d1", "go", b"once")
    await until(lambda: len(sink.delivered) == 1, "the command")
    gate = Gate(hub.backplane.mailbox_read)
    monkeypatch.setattr(hub.backplane, "mailbox_read", gate)
    async with held(hub.backplane):  # the ack's write waits behind this batch
        link.acked(sink.delivered[0][0])
        sink.unacked -= 1
        link.subscribe([("devices/d1/notifications/#", 1)])  # rewinds: reads from 0
        await asyncio.wait_for(gate.entered.wait(), 5)  # read done, ack not committed
    await until(lambda: not link._inflight, "the ack to be written")
    gate.open()
    await until(lambda: not link._pumping, "the rewound read to finish")
    assert sink.payloads() == [b"once"]


async def test_a_subscription_during_a_read_is_not_undone_by_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notification read while the device only had commands subscribed is skipped; a
    subscription that arrives while that read is still answering rewinds, and the read
    must not move the position past the notification again."""
    link, sink = await connect(hub, "d1", "devices/d1/commands/#")
    await until(lambda: not link._pumping, "the first read")
    await hub.messages.notify("d1", "weather", b"note")  # passed over: not subscribed
    sink.window = 0  # no room: the next command waits in the mailbox, unread
    await hub.messages.command("d1", "go", b"cmd")
    await until(lambda: not link._pumping, "the link to give up for lack of room")
    gate = Gate(hub.backplane.mailbox_read)
    monkeypatch.setattr(hub.backplane, "mailbox_read", gate)
    sink.window = 32
    link.wake()  # reads the command (the position is past the notification)...
    await asyncio.wait_for(gate.entered.wait(), 5)
    link.subscribe([("devices/d1/notifications/#", 1)])  # ...as a subscription rewinds
    gate.open()
    await until(lambda: sorted(sink.payloads()) == [b"cmd", b"note"], "both messages")


async def test_a_command_purged_in_its_own_batch_is_not_handed_over(hub: Hub) -> None:
    """Stored and purged in one commit: the store's announcement must not carry the
    message to the device (it is gone, with a `purged` outcome), the link reads instead."""
    link, sink = await connect(hub, "d1", "devices/d1/commands/#")
    await until(lambda: not link._pumping, "the first read")
    async with held(hub.backplane):
        sent = asyncio.ensure_future(hub.messages.command("d1", "open", b"door"))
        purged = asyncio.ensure_future(hub.messages.purge("d1"))
        await asyncio.sleep(0.05)  # both wait behind the held batch, then commit together
    await sent
    assert await purged == 1
    await until(lambda: not link._pumping, "the read the purge asked for")
    assert sink.delivered == []


async def test_after_a_failed_read_the_link_reads_again_before_handing_over(
    hub: Hub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read that got the mailbox's next message and then failed on a group log leaves
    the link's position where it was: the next stored message must not be handed over
    past the one that was read and never sent."""
    link, sink = await connect(hub, "d1", "devices/d1/commands/#", groups=("fleet",))
    await until(lambda: not link._pumping, "the first read")
    sink.window = 0  # no room: the command waits in the mailbox, unread
    await hub.messages.command("d1", "go", b"first")
    await until(lambda: not link._pumping, "the link to give up for lack of room")
    group_read = hub.backplane.group_read
    failures = [Exception("the store is briefly gone")]

    async def failing_group_read(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await group_read(*args)

    monkeypatch.setattr(hub.backplane, "group_read", failing_group_read)
    sink.window = 32
    link.wake()  # reads the mailbox (the first command), then fails on a group log
    await until(lambda: not failures and not link._pumping, "the failed read")
    assert sink.payloads() == []
    await hub.messages.command("d1", "go", b"second")
    await until(lambda: len(sink.delivered) == 2, "both commands")
    assert sink.payloads() == [b"first", b"second"]
