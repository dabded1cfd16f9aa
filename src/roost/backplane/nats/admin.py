"""What an operator sees of the cluster backplane: Roost's streams and buckets, their state.

Used by ``roost cluster status``; ``roost cluster setup`` is just a backplane
start (every module's ``setup`` creates or upgrades what it owns) and stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import StreamInfo

from roost.backplane.nats.context import Ctx


@dataclass(slots=True)
class StreamState:
    name: str
    kind: str  # "stream" or "kv"
    subjects: str
    messages: int
    bytes: int
    consumers: int
    replicas: int
    leader: str | None
    replicas_current: int  # followers that are current, plus the leader
    max_age: float | None


def _state(info: StreamInfo) -> StreamState:
    config, state, cluster = info.config, info.state, info.cluster
    name = config.name or ""
    replicas_current = 0
    leader = None
    if cluster is not None:
        leader = cluster.leader
        replicas_current = (1 if leader else 0) + sum(
            1 for r in (cluster.replicas or []) if r.current
        )
    return StreamState(
        name=name,
        kind="kv" if name.startswith("KV_") else "stream",
        subjects=", ".join(config.subjects or []),
        messages=state.messages,
        bytes=state.bytes,
        consumers=state.consumer_count,
        replicas=config.num_replicas or 1,
        leader=leader,
        replicas_current=replicas_current if cluster is not None else 1,
        max_age=config.max_age or None,
    )


def is_ours(ctx: Ctx, stream_name: str) -> bool:
    """Whether a stream (or KV bucket's stream) belongs to this installation's prefix."""
    return stream_name.startswith(ctx.names.stream_prefix + "_") or stream_name.startswith(
        f"KV_{ctx.names.prefix}_"
    )


async def streams(ctx: Ctx) -> list[StreamState]:
    """Every stream and bucket of this installation, by name."""
    infos = await ctx.jsm.streams_info()
    return sorted((_state(i) for i in infos if is_ours(ctx, i.config.name or "")),
                  key=lambda s: (s.kind, s.name))


async def delete_all(ctx: Ctx) -> int:
    """Delete every stream and bucket of this installation (tests; ``roost cluster reset``)."""
    gone = 0
    for info in await ctx.jsm.streams_info():
        name = info.config.name or ""
        if is_ours(ctx, name):
            await ctx.jsm.delete_stream(name)
            gone += 1
    return gone
