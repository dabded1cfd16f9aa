"""Presence (compare-and-set claims, takeover KICKs), last seen, MQTT sessions.

Two KV buckets, key ``token(device)``:

* ``presence``: ``{connected, owner, node, since, last_seen}``. A claim or a
  release is a compare-and-set loop on the key's revision, so of two nodes
  racing to claim a device exactly one ends as owner: the later write saw the
  earlier one and returns it as the previous owner, and its KICK signal (data:
  the new owner) makes the node holding the earlier connection close it.
* ``sessions``: the MQTT session state kept between connections.

``device_touch`` is best effort: touches are coalesced in memory and written
at most once per device per flush (every second, and at stop). Reads on this
node merge the pending ones, so a touch is visible here at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from roost.backplane.base import Signal, SignalKind
from roost.backplane.nats import signals
from roost.backplane.nats.buckets import Bucket, Conflict, Entry
from roost.backplane.nats.codec import dumps, loads
from roost.backplane.nats.context import Ctx
from roost.backplane.nats.names import token
from roost.errors import Unavailable
from roost.model import Presence, Session

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0  # seconds between writes of coalesced touches
FLUSH_CONCURRENCY = 256
EXPIRED_MARKER_TTL = 60.0  # an expired session's removal marker is kept this long


@dataclass(slots=True)
class _State:
    presence: Bucket
    sessions: Bucket
    touches: dict[str, float] = field(default_factory=dict)  # device -> newest last_seen
    flusher: asyncio.Task[None] | None = None


_states: dict[Ctx, _State] = {}


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the buckets; start the touch flusher (once per ctx)."""
    st = _states.get(ctx)
    if st is None:
        st = _states[ctx] = _State(Bucket(ctx, "presence"), Bucket(ctx, "sessions"))
    for bucket in (st.presence, st.sessions):
        await bucket.ensure()
    if st.flusher is None:
        st.flusher = asyncio.create_task(_flush_forever(st), name="roost-presence-touches")


async def stop(ctx: Ctx) -> None:
    """Stop the flusher and write the touches still pending."""
    st = _states.pop(ctx, None)
    if st is None:
        return
    if st.flusher is not None:
        st.flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await st.flusher
    if not ctx.nc.is_connected:
        if st.touches:
            log.warning("NATS is unreachable: %d last-seen times not written", len(st.touches))
        return
    try:
        await _flush(st)
    except Exception:  # best effort: last seen is advisory
        log.warning("could not write pending last-seen times", exc_info=True)


def _state(ctx: Ctx) -> _State:
    st = _states.get(ctx)
    if st is None:
        raise Unavailable("the NATS presence module was not set up")
    return st


# --- presence -------------------------------------------------------------------------------


async def claim(ctx: Ctx, device_id: str, owner: str, node: str, at: float) -> str | None:
    """Make ``owner`` the device's live session; return the previous live owner, if any."""
    st = _state(ctx)
    key = token(device_id)
    while True:
        entry = await st.presence.entry(key)
        old = _record(entry)
        previous = old.get("owner") if old.get("connected") else None
        new = {"connected": True, "owner": owner, "node": node, "since": at,
               "last_seen": old.get("last_seen")}
        try:
            await st.presence.cas(key, dumps(new), _revision(entry))
            break
        except Conflict:
            continue  # another claim or release got there first: decide again
    if previous is not None and previous != owner:
        await signals.announce(ctx, Signal(SignalKind.KICK, device_id, owner))
    return None if previous is None else str(previous)


async def release(ctx: Ctx, device_id: str, owner: str, at: float) -> None:
    """Mark the device offline (last seen ``at``) only if ``owner`` still holds it."""
    st = _state(ctx)
    key = token(device_id)
    while True:
        entry = await st.presence.entry(key)
        old = _record(entry)
        if not old.get("connected") or old.get("owner") != owner:
            return
        new = {"connected": False, "owner": None, "node": None, "since": at, "last_seen": at}
        try:
            await st.presence.cas(key, dumps(new), _revision(entry))
            break
        except Conflict:
            continue
    if st.touches.get(device_id, at) <= at:
        st.touches.pop(device_id, None)


async def get(ctx: Ctx, device_id: str) -> Presence | None:
    """The device's presence; None if it never connected."""
    st = _state(ctx)
    rec = _record(await st.presence.entry(token(device_id)))
    if rec.get("since") is None:
        return None
    return Presence(device=device_id, connected=bool(rec.get("connected")), node=rec.get("node"),
                    since=rec["since"], last_seen=_newest(rec.get("last_seen"),
                                                          st.touches.get(device_id)))


async def last_seen(ctx: Ctx, device_id: str) -> float | None:
    """When the device was last seen (pending touches of this node included)."""
    st = _state(ctx)
    rec = _record(await st.presence.entry(token(device_id)))
    return _newest(rec.get("last_seen"), st.touches.get(device_id))


async def device_touch(ctx: Ctx, device_id: str, last_seen: float) -> None:
    """Remember the time; the flusher writes it (coalesced) within a second."""
    touches = _state(ctx).touches
    touches[device_id] = max(last_seen, touches.get(device_id, last_seen))


async def drop(ctx: Ctx, device_id: str) -> None:
    """Forget the device's presence and session (it is being removed)."""
    st = _state(ctx)
    st.touches.pop(device_id, None)
    key = token(device_id)
    await st.presence.erase(key)
    await st.sessions.erase(key)


async def _flush_forever(st: _State) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        try:
            await _flush(st)
        except Exception:  # keep flushing; last seen is advisory
            log.warning("writing last-seen times failed", exc_info=True)


async def _flush(st: _State) -> None:
    """Write every pending touch once (the newest time wins over what is stored)."""
    pending, st.touches = st.touches, {}
    items = list(pending.items())
    for start in range(0, len(items), FLUSH_CONCURRENCY):
        chunk = items[start:start + FLUSH_CONCURRENCY]
        await asyncio.gather(*(_write_touch(st, d, t) for d, t in chunk))


async def _write_touch(st: _State, device_id: str, at: float) -> None:
    key = token(device_id)
    while True:
        entry = await st.presence.entry(key)
        rec = _record(entry)
        if rec.get("last_seen") is not None and rec["last_seen"] >= at:
            return
        rec["last_seen"] = at
        try:
            await st.presence.cas(key, dumps(rec), _revision(entry))
            return
        except Conflict:
            continue


def _record(entry: Entry | None) -> dict[str, Any]:
    return {} if entry is None or entry.value is None else loads(entry.value)


def _revision(entry: Entry | None) -> int:
    return 0 if entry is None else entry.revision


def _newest(stored: float | None, pending: float | None) -> float | None:
    if stored is None or pending is None:
        return pending if stored is None else stored
    return max(stored, pending)


# --- MQTT sessions --------------------------------------------------------------------------


async def session_get(ctx: Ctx, device_id: str) -> Session | None:
    value = await _state(ctx).sessions.get(token(device_id))
    return None if value is None else _session(device_id, value)


async def session_put(ctx: Ctx, session: Session) -> None:
    value = dumps({"subscriptions": session.subscriptions, "expires_at": session.expires_at})
    await _state(ctx).sessions.put(token(session.device), value)


async def session_delete(ctx: Ctx, device_id: str) -> None:
    await _state(ctx).sessions.erase(token(device_id))


async def expire_sessions(ctx: Ctx, now: float) -> None:
    """Remove sessions whose expiry passed (a scan: persistent sessions are few).

    The removal is a compare-and-set on the revision read, so a session renewed
    meanwhile (``session_put`` at disconnect) is kept.
    """
    bucket = _state(ctx).sessions
    async for key, revision, value in bucket.scan():
        expires_at = loads(value).get("expires_at")
        if expires_at is not None and expires_at <= now:
            with contextlib.suppress(Conflict):
                await bucket.remove(key, revision, EXPIRED_MARKER_TTL)


def _session(device_id: str, value: bytes) -> Session:
    v = loads(value)
    return Session(device=device_id, subscriptions=dict(v.get("subscriptions", {})),
                   expires_at=v.get("expires_at"))
