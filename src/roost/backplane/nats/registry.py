"""Devices, API tokens and meta in KV buckets.

* ``devices``: key ``token(id)``, value the device as JSON (without
  ``last_seen``, which lives with presence: it changes too often to rewrite the
  record). Every write is a compare-and-set on the key's revision, so a create
  never overwrites and an update never resurrects a deleted device.
* ``tokens``: ``h.<hash>`` holds the token (looked up on every API call) and
  ``i.<id>`` the hash (so delete by id needs no scan).
* ``meta``: small settings, first writer wins.

Paging ``device_list`` over many devices uses a node-local index
(:mod:`devindex`) kept by one watch of the devices bucket; the page's records
themselves are read by Direct Get.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

from roost.backplane.base import Signal, SignalKind
from roost.backplane.nats import devimport, groups, mailbox, presence, signals
from roost.backplane.nats.buckets import Bucket, Conflict, is_marker
from roost.backplane.nats.codec import dumps, loads
from roost.backplane.nats.context import Ctx
from roost.backplane.nats.devindex import DeviceIndex
from roost.backplane.nats.names import token, untoken
from roost.errors import AlreadyExists, Unavailable, UnknownDevice
from roost.model import BROADCAST, ApiToken, Device

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0  # seconds to wait for the device index's initial load
WATCH_INACTIVE = 30.0  # seconds after which the server drops a dead node's watch
MARKER_TTL = 3600.0  # a removed device's purge marker lives this long (watchers see it)


@dataclass(slots=True)
class _State:
    devices: Bucket
    tokens: Bucket
    meta: Bucket
    index: DeviceIndex = field(default_factory=DeviceIndex)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    watch: Subscription | None = None
    watched: int = 0  # highest revision the watch delivered


_states: dict[Ctx, _State] = {}


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the buckets; start the device index watch (once per ctx)."""
    st = _states.get(ctx)
    if st is None:
        st = _states[ctx] = _State(Bucket(ctx, "devices"), Bucket(ctx, "tokens"),
                                   Bucket(ctx, "meta"))
    for bucket in (st.devices, st.tokens, st.meta):
        await bucket.ensure()
    if st.watch is None:
        st.watch = await _watch(ctx, st)


async def stop(ctx: Ctx) -> None:
    """Stop the index watch and forget this ctx."""
    st = _states.pop(ctx, None)
    if st is None or st.watch is None or not ctx.nc.is_connected:
        return  # with NATS unreachable the consumer is left to its inactive threshold
    try:
        info = await st.watch.consumer_info()  # type: ignore[attr-defined]
        await st.watch.unsubscribe()
        await ctx.jsm.delete_consumer(st.devices.stream, info.name)
    except Exception:  # gone already, or the connection is closing: it times out anyway
        log.debug("device watch already gone", exc_info=True)


def _state(ctx: Ctx) -> _State:
    st = _states.get(ctx)
    if st is None:
        raise Unavailable("the NATS registry was not set up")
    return st


async def _indexed(ctx: Ctx) -> _State:
    """The state, once the device index holds every device (after a start)."""
    st = _state(ctx)
    if not st.ready.is_set():
        try:
            await asyncio.wait_for(st.ready.wait(), READY_TIMEOUT)
        except TimeoutError as exc:
            raise Unavailable("the device index did not load in time") from exc
    return st


# --- the device index watch ---------------------------------------------------------------


async def _watch(ctx: Ctx, st: _State) -> Subscription:
    """One ordered consumer over the devices bucket: last value per key, then changes."""

    async def on_msg(msg: Msg) -> None:
        meta = msg.metadata
        revision = meta.sequence.stream
        device_id = untoken(msg.subject[len(st.devices.prefix):])
        try:
            if st.index.revision(device_id) >= revision:
                pass  # this node's own write, applied already: skip decoding it
            elif is_marker(msg.headers):
                st.index.remove(device_id, revision)
            else:
                st.index.put(device_id, loads(msg.data).get("groups", ()), revision)
        except (ValueError, TypeError, AttributeError):  # never stall the watch on one record
            log.warning("skipping unreadable device record %r", device_id)
        st.index.seen(device_id, revision)
        st.watched = max(st.watched, revision)
        if meta.num_pending == 0:
            st.ready.set()

    sub = await ctx.js.subscribe(
        st.devices.subject(">"), stream=st.devices.stream, cb=on_msg,
        ordered_consumer=True, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        inactive_threshold=WATCH_INACTIVE,
    )
    info = await sub.consumer_info()
    delivered = info.delivered.stream_seq if info.delivered else 0
    if info.num_pending == 0 and (delivered or 0) <= st.watched:
        st.ready.set()  # nothing to load, or all of it was handled already
    return sub


# --- meta -------------------------------------------------------------------------------


async def meta_get(ctx: Ctx, key: str) -> str | None:
    value = await _state(ctx).meta.get(token(key))
    return None if value is None else value.decode()


async def meta_put_if_absent(ctx: Ctx, key: str, value: str) -> str:
    bucket = _state(ctx).meta
    while True:
        if await bucket.create(token(key), value.encode()) is not None:
            return value
        stored = await bucket.get(token(key))
        if stored is not None:  # else removed in between: try again
            return stored.decode()


# --- devices ----------------------------------------------------------------------------


async def device_create(ctx: Ctx, device: Device) -> None:
    """Cursors first, then the record: a visible device always has its cursors."""
    st = _state(ctx)
    key = token(device.id)
    if await st.devices.get(key) is not None:
        raise AlreadyExists(f"device {device.id!r} already exists")
    member_of = unique_groups(device.groups)
    await groups.init_cursors(ctx, device.id, member_of)
    record = device_json(device)
    revision = await st.devices.create(key, record, devimport.msg_id(key, record))
    if revision is None:
        raise AlreadyExists(f"device {device.id!r} already exists")
    st.index.put(device.id, member_of, revision)


async def device_import(ctx: Ctx, devices: Sequence[Device]) -> int:
    """Create the devices whose ids are new (first one wins on duplicates in the batch)."""
    st = await _indexed(ctx)
    fresh: dict[str, Device] = {}
    for d in devices:
        if d.id not in st.index:
            fresh.setdefault(d.id, d)
    batch = list(fresh.values())
    await devimport.init_cursors(ctx, [(d.id, unique_groups(d.groups)) for d in batch])
    created = await devimport.create_all(st.devices, [(token(d.id), device_json(d))
                                                      for d in batch])
    for d, revision in zip(batch, created, strict=True):
        if revision is not None:
            st.index.put(d.id, unique_groups(d.groups), revision)
    return sum(r is not None for r in created)


async def device_get(ctx: Ctx, device_id: str) -> Device | None:
    value, last_seen = await asyncio.gather(
        _state(ctx).devices.get(token(device_id)), presence.last_seen(ctx, device_id))
    return None if value is None else device_from_json(value, last_seen)


async def device_exists(ctx: Ctx, device_id: str) -> bool:
    """Whether the device is registered (exact, any node: a Direct Get)."""
    return await _state(ctx).devices.get(token(device_id)) is not None


async def device_update(ctx: Ctx, device: Device) -> None:
    """Compare-and-set on the record; joined groups get cursors before it, left ones after."""
    st = _state(ctx)
    key = token(device.id)
    new_groups = unique_groups(device.groups)
    while True:
        entry = await st.devices.entry(key)
        if entry is None or entry.value is None:
            raise UnknownDevice(f"no device {device.id!r}")
        old = device_from_json(entry.value, None)
        joined = [g for g in new_groups if g not in old.groups]
        left = [g for g in old.groups if g not in new_groups]
        if joined:
            await groups.init_cursors(ctx, device.id, joined)
        record = Device(id=device.id, key_hash=device.key_hash, groups=new_groups,
                        metadata=device.metadata, enabled=device.enabled,
                        created_at=old.created_at)
        try:
            revision = await st.devices.cas(key, device_json(record), entry.revision)
        except Conflict:
            continue  # changed meanwhile: decide again on the new record
        break
    st.index.put(device.id, new_groups, revision)
    if left:
        await groups.drop_cursors(ctx, device.id, left)
    await signals.announce(ctx, Signal(SignalKind.DEVICE, device.id))


async def device_delete(ctx: Ctx, device_id: str) -> bool:
    """Drop what is kept for the device, then its record (so a retry finds it to finish)."""
    st = _state(ctx)
    key = token(device_id)
    entry = await st.devices.entry(key)
    if entry is None or entry.value is None:
        return False
    await mailbox.drop(ctx, device_id, time.time())
    await groups.drop_cursors(ctx, device_id, None)
    await presence.drop(ctx, device_id)
    while True:
        try:
            revision = await st.devices.remove(key, entry.revision, MARKER_TTL)
            break
        except Conflict:  # updated, or removed by a racing delete
            entry = await st.devices.entry(key)
            if entry is None or entry.value is None:
                return False
    st.index.remove(device_id, revision)
    await signals.announce(ctx, Signal(SignalKind.DEVICE, device_id))
    return True


async def device_list(ctx: Ctx, after: str | None, limit: int, group: str | None) -> list[Device]:
    """A page from the index; records by Direct Get (ids gone meanwhile are skipped)."""
    st = await _indexed(ctx)
    if group == BROADCAST:
        group = None  # every device is a member of BROADCAST
    out: list[Device] = []
    while len(out) < limit:
        ids = st.index.page(after, limit - len(out), group)
        if not ids:
            break
        found = await asyncio.gather(*(device_get(ctx, i) for i in ids))
        out += [d for d in found if d is not None and (group is None or group in d.groups)]
        after = ids[-1]
    return out


async def device_count(ctx: Ctx) -> int:
    return len((await _indexed(ctx)).index)


# --- records ------------------------------------------------------------------------------


def unique_groups(names: Iterable[str]) -> tuple[str, ...]:
    """Groups in the given order, once each; BROADCAST is implied, never listed."""
    return tuple(g for g in dict.fromkeys(names) if g != BROADCAST)


def device_json(d: Device) -> bytes:
    return dumps({"id": d.id, "key_hash": d.key_hash, "groups": list(unique_groups(d.groups)),
                  "metadata": d.metadata, "enabled": d.enabled, "created_at": d.created_at})


def device_from_json(data: bytes, last_seen: float | None) -> Device:
    v: dict[str, Any] = loads(data)
    return Device(id=v["id"], key_hash=v["key_hash"], groups=tuple(v.get("groups", ())),
                  metadata=v.get("metadata", {}), enabled=v.get("enabled", True),
                  created_at=v.get("created_at", 0.0), last_seen=last_seen)


# --- API tokens ---------------------------------------------------------------------------


async def token_create(ctx: Ctx, tok: ApiToken) -> None:
    """The id key first (it decides "taken"), then the hash key the lookups read."""
    bucket = _state(ctx).tokens
    id_key, hash_key = _token_keys(tok.id, tok.token_hash)
    if await bucket.create(id_key, tok.token_hash.encode()) is None:
        raise AlreadyExists(f"token {tok.id!r} already exists")
    if await bucket.create(hash_key, _token_json(tok)) is None:
        await bucket.erase(id_key)
        raise AlreadyExists("a token with this secret already exists")


async def token_find(ctx: Ctx, token_hash: str) -> ApiToken | None:
    value = await _state(ctx).tokens.get(f"h.{token(token_hash)}")
    return None if value is None else _token_from_json(value)


async def token_list(ctx: Ctx) -> list[ApiToken]:
    found = [_token_from_json(v) async for _, _, v in _state(ctx).tokens.scan("h.>")]
    return sorted(found, key=lambda t: t.id)


async def token_delete(ctx: Ctx, token_id: str) -> bool:
    """Revoke (drop the hash key) before dropping the id key: a crash never leaves it valid."""
    bucket = _state(ctx).tokens
    id_key = f"i.{token(token_id)}"
    entry = await bucket.entry(id_key)
    if entry is None or entry.value is None:
        return False
    await bucket.erase(_token_keys(token_id, entry.value.decode())[1])
    return await bucket.erase(id_key) > 0  # of racing deletes, one gets True


def _token_keys(token_id: str, token_hash: str) -> tuple[str, str]:
    return f"i.{token(token_id)}", f"h.{token(token_hash)}"


def _token_json(t: ApiToken) -> bytes:
    return dumps({"id": t.id, "token_hash": t.token_hash, "scopes": list(t.scopes),
                  "description": t.description, "created_at": t.created_at})


def _token_from_json(data: bytes) -> ApiToken:
    v = loads(data)
    return ApiToken(id=v["id"], token_hash=v["token_hash"], scopes=tuple(v["scopes"]),
                    description=v.get("description", ""), created_at=v.get("created_at", 0.0))

