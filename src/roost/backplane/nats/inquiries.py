"""Inquiry records, the index of live inquiries that ``take`` and ``expire`` walk, and refs.

Three KV buckets (see :mod:`buckets`):

* ``inquiries`` — key ``token(iid)``, the record (JSON). Every change is a
  compare-and-set on its revision, so of several nodes taking at once one wins.
* ``inquiry_live`` — one small entry per inquiry not yet ENDED: created and
  expiry times, and a hint of the record's state and lease with the record
  revision it reflects (``r``). ``take`` reads this index, not the records,
  to find candidates (pending, or leased and lapsed, and not expired), oldest
  first, and checks each on its record before leasing it; ``expire`` finds what
  expired here. An ENDED inquiry leaves the index (a purge marker that keeps
  ``r`` in a header). A hint is only written over an older one (lower ``r``),
  so the index ends up reflecting the newest record whatever the order in
  which writers of several nodes arrive; a hint found stale on its record is
  corrected on the spot. ``put`` writes the hint (r=0) before the record, so a
  pending record always has its entry, even if the node dies in between.
* ``inquiry_refs`` — key ``<device token>.<sha256(name, rid)>``: the newest
  inquiry with that name and request id (``find``).

The index holds what is open or being answered: inquiries are answered within
seconds, so it stays small however many go through; read in batches of 256
per Direct Get. Records, refs and hints carry a ``Nats-TTL`` reaching
``RETENTION`` past the inquiry's expiry, so ended inquiries go away on their own
(the ended state stays readable meanwhile, so a late reply finds "ended").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from roost.backplane.base import Signal, SignalKind
from roost.backplane.nats import signals
from roost.backplane.nats.buckets import Bucket, Conflict, is_marker
from roost.backplane.nats.codec import b64, unb64
from roost.backplane.nats.context import Ctx, StoredMsg
from roost.backplane.nats.names import token, untoken
from roost.errors import AlreadyExists
from roost.model import Inquiry, InquiryState

RETENTION = 3600.0  # an inquiry stays readable this long after it expired
MARKER_TTL = 600.0  # a removed index entry's marker outlives racing writers by this
PARALLEL = 32  # records one take or expire checks at once
H_REV = "Roost-Rev"  # on an index removal marker: the record revision it reflects
_OPEN = (InquiryState.PENDING, InquiryState.TAKEN)
_SIGNAL = Signal(SignalKind.INQUIRY, "")


def _records(ctx: Ctx) -> Bucket:
    return Bucket(ctx, "inquiries")


def _live(ctx: Ctx) -> Bucket:
    return Bucket(ctx, "inquiry_live")


def _refs(ctx: Ctx) -> Bucket:
    return Bucket(ctx, "inquiry_refs")


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the three buckets."""
    for store in (_records(ctx), _live(ctx), _refs(ctx)):
        await store.ensure()


async def stop(ctx: Ctx) -> None:
    """Nothing runs in the background."""


# --- records ----------------------------------------------------------------------------


def _encode(i: Inquiry) -> bytes:
    value = {"id": i.id, "d": i.device, "n": i.name, "r": i.rid, "p": b64(i.payload),
             "c": i.created_at, "e": i.expires_at, "t": i.content_type, "s": i.state.value,
             "l": i.lease_until}
    return json.dumps(value, separators=(",", ":")).encode()


def _decode(data: bytes) -> Inquiry:
    v = json.loads(data)
    return Inquiry(id=v["id"], device=v["d"], name=v["n"], rid=v["r"], payload=unb64(v["p"]) or b"",
                   created_at=v["c"], expires_at=v["e"], content_type=v["t"],
                   state=InquiryState(v["s"]), lease_until=v["l"])


def _ttl(i: Inquiry) -> float:
    """Seconds until the inquiry may be forgotten (wall clock: the server counts them)."""
    return i.expires_at + RETENTION - time.time()


async def _record(ctx: Ctx, inquiry_id: str) -> tuple[int, Inquiry] | None:
    """The record and its revision; None if there is none."""
    msg = await _records(ctx).last(token(inquiry_id))
    if msg is None or is_marker(msg.headers):
        return None
    return msg.seq, _decode(msg.data)


async def _save(ctx: Ctx, i: Inquiry, last: int) -> int:
    """Compare-and-set the record; its new revision (``Conflict`` if it changed)."""
    return await _records(ctx).write(token(i.id), _encode(i), last=last, ttl=_ttl(i))


# --- the live index ---------------------------------------------------------------------


def _rev_of(msg: StoredMsg) -> int:
    """The record revision an index entry (or its removal marker) reflects."""
    if is_marker(msg.headers):
        return int(msg.headers.get(H_REV, "0"))
    return int(json.loads(msg.data)["r"])


async def _reflect(ctx: Ctx, i: Inquiry, revision: int) -> None:
    """Bring the index entry to record revision ``revision`` unless it reflects a newer one."""
    live, key = _live(ctx), token(i.id)
    while True:
        msg = await live.last(key)
        if msg is not None and _rev_of(msg) >= revision:
            return
        last = 0 if msg is None else msg.seq
        try:
            if i.state is not InquiryState.ENDED:
                hint = {"c": i.created_at, "e": i.expires_at, "s": i.state.value,
                        "l": i.lease_until, "r": revision}
                await live.write(key, json.dumps(hint).encode(), last=last, ttl=_ttl(i))
            elif msg is not None and not is_marker(msg.headers):
                await live.remove(key, last=last, ttl=MARKER_TTL, extra={H_REV: str(revision)})
            return
        except Conflict:
            continue


async def _live_entries(ctx: Ctx) -> list[tuple[str, int, dict[str, Any]]]:
    """``(inquiry id, entry revision, hint)`` of every inquiry in the index."""
    live = _live(ctx)
    return [(untoken(live.key_of(msg)), msg.seq, json.loads(msg.data))
            async for msg in live.last_msgs() if not is_marker(msg.headers)]


async def _drop_entry(ctx: Ctx, inquiry_id: str, entry_revision: int) -> None:
    """Remove an index entry whose record is gone, unless it changed meanwhile."""
    try:
        await _live(ctx).remove(token(inquiry_id), last=entry_revision, ttl=MARKER_TTL)
    except Conflict:
        pass


async def _in_turns(items: list[Any], work: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """``work`` on every item, ``PARALLEL`` at a time, results in order."""
    out: list[Any] = []
    for start in range(0, len(items), PARALLEL):
        out += await asyncio.gather(*(work(x) for x in items[start:start + PARALLEL]))
    return out


# --- the interface ----------------------------------------------------------------------


async def put(ctx: Ctx, inquiry: Inquiry) -> None:
    """Index entry (revision 0), record (create only), ref; then INQUIRY to every node."""
    pending = _copy(inquiry, InquiryState.PENDING, 0.0)
    await _reflect(ctx, pending, 0)
    key, records = token(pending.id), _records(ctx)
    last = 0
    while True:
        try:
            revision = await records.write(key, _encode(pending), last=last, ttl=_ttl(pending))
            break
        except Conflict:
            msg = await records.last(key)
            if msg is not None and not is_marker(msg.headers):
                raise AlreadyExists(f"inquiry {pending.id!r} already exists") from None
            last = 0 if msg is None else msg.seq
    await _reflect(ctx, pending, revision)
    await _point_ref(ctx, pending)
    await signals.announce(ctx, _SIGNAL)


def _copy(i: Inquiry, state: InquiryState, lease_until: float) -> Inquiry:
    return Inquiry(id=i.id, device=i.device, name=i.name, rid=i.rid, payload=i.payload,
                   created_at=i.created_at, expires_at=i.expires_at,
                   content_type=i.content_type, state=state, lease_until=lease_until)


def _ref_key(device_id: str, name: str, rid: str) -> str:
    digest = hashlib.sha256(f"{name}\0{rid}".encode()).hexdigest()[:32]
    return f"{token(device_id)}.{digest}"


async def _point_ref(ctx: Ctx, i: Inquiry) -> None:
    """Make the ref name the newest inquiry (by ``created_at``; a tie goes to the later put)."""
    refs, key = _refs(ctx), _ref_key(i.device, i.name, i.rid)
    value = json.dumps({"id": i.id, "c": i.created_at}).encode()
    while True:
        msg = await refs.last(key)
        if (msg is not None and not is_marker(msg.headers)
                and json.loads(msg.data)["c"] > i.created_at):
            return
        try:
            await refs.write(key, value, last=0 if msg is None else msg.seq, ttl=_ttl(i))
            return
        except Conflict:
            continue


async def get(ctx: Ctx, inquiry_id: str) -> Inquiry | None:
    found = await _record(ctx, inquiry_id)
    return None if found is None else found[1]


async def find(ctx: Ctx, device_id: str, name: str, rid: str) -> Inquiry | None:
    msg = await _refs(ctx).last(_ref_key(device_id, name, rid))
    if msg is None or is_marker(msg.headers):
        return None
    return await get(ctx, json.loads(msg.data)["id"])


async def set_state(ctx: Ctx, inquiry_id: str, state: InquiryState) -> None:
    """Change the state (back to PENDING also drops the lease and signals); no-op if unknown."""
    while True:
        found = await _record(ctx, inquiry_id)
        if found is None:
            return
        revision, inquiry = found
        lease = 0.0 if state is InquiryState.PENDING else inquiry.lease_until
        changed = _copy(inquiry, state, lease)
        try:
            revision = await _save(ctx, changed, revision)
            break
        except Conflict:
            continue
    await _reflect(ctx, changed, revision)
    if state is InquiryState.PENDING:
        await signals.announce(ctx, _SIGNAL)


# --- take -------------------------------------------------------------------------------


async def take(ctx: Ctx, max_items: int, lease: float, now: float) -> list[Inquiry]:
    """Lease the oldest takeable inquiries to this caller (compare-and-set on each record)."""
    if max_items <= 0:
        return []
    candidates = sorted(
        (hint["c"], inquiry_id) for inquiry_id, _, hint in await _live_entries(ctx)
        if hint["s"] in _OPEN and hint["l"] <= now < hint["e"])
    taken: list[Inquiry] = []
    ids = [inquiry_id for _, inquiry_id in candidates]
    while ids and len(taken) < max_items:
        turn, ids = ids[: max_items - len(taken)], ids[max_items - len(taken):]
        got = await _in_turns(turn, lambda i: _take_one(ctx, i, lease, now))
        taken += [i for i in got if i is not None]
    return taken


async def _take_one(ctx: Ctx, inquiry_id: str, lease: float, now: float) -> Inquiry | None:
    found = await _record(ctx, inquiry_id)
    if found is None:
        return None  # a put in progress, or gone: expire cleans the entry up
    revision, inquiry = found
    takeable = inquiry.state in _OPEN and inquiry.lease_until <= now < inquiry.expires_at
    if not takeable:
        await _reflect(ctx, inquiry, revision)  # the hint was stale: correct it
        return None
    leased = _copy(inquiry, InquiryState.TAKEN, now + lease)
    try:
        revision = await _save(ctx, leased, revision)
    except Conflict:
        return None  # another taker won
    await _reflect(ctx, leased, revision)
    return leased


# --- expiry -----------------------------------------------------------------------------


async def expire_inquiries(ctx: Ctx, now: float) -> None:
    """End every live inquiry whose expiry passed; forget index entries without a record."""
    due = [(inquiry_id, entry_revision) for inquiry_id, entry_revision, hint
           in await _live_entries(ctx) if hint["e"] <= now]
    await _in_turns(due, lambda item: _end(ctx, item[0], item[1]))


async def _end(ctx: Ctx, inquiry_id: str, entry_revision: int) -> None:
    while True:
        found = await _record(ctx, inquiry_id)
        if found is None:
            await _drop_entry(ctx, inquiry_id, entry_revision)
            return
        revision, inquiry = found
        ended = _copy(inquiry, InquiryState.ENDED, inquiry.lease_until)
        if inquiry.state is not InquiryState.ENDED:
            try:
                revision = await _save(ctx, ended, revision)
            except Conflict:
                continue
        await _reflect(ctx, ended, revision)
        return
