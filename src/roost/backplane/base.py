"""The backplane: the one narrow interface between the hub and storage.

Two implementations pass one contract suite (``tests/backplane/contract.py``):
``backplane.sqlite`` (embedded, the default) and ``backplane.nats`` (cluster).

Rules every implementation keeps:

* A coroutine that writes returns only after the write is durable (SQLite:
  committed with synchronous=FULL; NATS: acknowledged by JetStream). This is
  what lets the hub send a PUBACK or a 201/202 right after it.
* Writes are atomic per call: a call either happens whole or not at all.
* Expired messages are never returned by a read (``now`` is passed in so
  tests can move time).
* After a write is durable, the matching :class:`Signal` is delivered to every
  subscriber on every node (embedded: in process, on the event loop).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from roost.model import (
    ApiToken,
    Device,
    Inquiry,
    InquiryState,
    MailboxMessage,
    Outcome,
    Presence,
    Session,
    TelemetryBatch,
    TelemetryRecord,
)


class SignalKind(StrEnum):
    # key: device id; a message was put in its mailbox (data: the message, where the
    # backplane can hand it over as stored) or, with no data, the mailbox may have changed
    MAILBOX = "mailbox"
    GROUP = "group"  # key: group id; a message was put in its log (BROADCAST for all)
    TELEMETRY = "telemetry"  # key: ""; records were appended
    INQUIRY = "inquiry"  # key: ""; an inquiry is waiting to be taken
    OUTCOME = "outcome"  # key: message id; data: the Outcome
    KICK = "kick"  # key: device id; data: the owner (str) that now holds its session
    DEVICE = "device"  # key: device id; the device was changed or removed (drop caches)


@dataclass(frozen=True, slots=True)
class Signal:
    kind: SignalKind
    key: str
    data: object = None


SignalCallback = Callable[[Signal], None]


class SignalBus:
    """In-process fan-out of signals to subscribers (used by both backplanes)."""

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[SignalCallback] = []

    def subscribe(self, callback: SignalCallback) -> None:
        self._callbacks.append(callback)

    def unsubscribe(self, callback: SignalCallback) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, signal: Signal) -> None:
        for callback in list(self._callbacks):
            callback(signal)


class Backplane(abc.ABC):
    """Storage and cross-node signalling, in storage terms."""

    signals: SignalBus

    # --- life cycle ---------------------------------------------------------

    @abc.abstractmethod
    async def start(self) -> None:
        """Open storage, create or upgrade the schema/streams. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release everything. Idempotent."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Return if the node can serve; raise ``Unavailable`` otherwise."""

    # --- small settings -----------------------------------------------------

    @abc.abstractmethod
    async def meta_get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def meta_put_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless the key exists; return the stored value either way."""

    # --- registry -------------------------------------------------------------

    @abc.abstractmethod
    async def device_create(self, device: Device) -> None:
        """Register a device; raise ``AlreadyExists`` if the id is taken.

        Its cursor in each of its groups (and in BROADCAST) starts at that log's
        head, so it receives only group messages sent after it joined.
        """

    @abc.abstractmethod
    async def device_import(self, devices: Sequence[Device]) -> int:
        """Register many devices in one durable write; skip ids that exist.

        Returns how many were created. Cursors start as in ``device_create``.
        """

    @abc.abstractmethod
    async def device_get(self, device_id: str) -> Device | None: ...

    @abc.abstractmethod
    async def device_update(self, device: Device) -> None:
        """Replace groups, enabled, metadata and key_hash; raise ``UnknownDevice``.

        Cursors of newly joined groups start at the head; those of left groups are dropped.
        """

    @abc.abstractmethod
    async def device_delete(self, device_id: str) -> bool:
        """Remove the device, its mailbox, cursors and session. False if unknown."""

    @abc.abstractmethod
    async def device_list(
        self, after: str | None, limit: int, group: str | None = None
    ) -> list[Device]:
        """Devices with id > ``after`` in id order, at most ``limit``, optionally in ``group``."""

    @abc.abstractmethod
    async def device_count(self) -> int: ...

    @abc.abstractmethod
    async def device_touch(self, device_id: str, last_seen: float) -> None:
        """Record when the device was last seen (best effort, may be batched)."""

    # --- API tokens -------------------------------------------------------------

    @abc.abstractmethod
    async def token_create(self, token: ApiToken) -> None: ...

    @abc.abstractmethod
    async def token_find(self, token_hash: str) -> ApiToken | None: ...

    @abc.abstractmethod
    async def token_list(self) -> list[ApiToken]: ...

    @abc.abstractmethod
    async def token_delete(self, token_id: str) -> bool: ...

    # --- mailboxes (one per device) -------------------------------------------

    @abc.abstractmethod
    async def mailbox_put(self, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
        """Append to ``msg.device``'s mailbox; return it with ``seq`` set.

        Raises ``UnknownDevice`` if the device is not registered and
        ``MailboxFull`` if it already holds ``max_depth`` unexpired messages.
        Emits ``Signal(MAILBOX, device)``.
        """

    @abc.abstractmethod
    async def mailbox_read(
        self, device_id: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        """Unexpired messages with seq > ``after_seq``, in seq order."""

    @abc.abstractmethod
    async def mailbox_depth(self, device_id: str, now: float) -> int:
        """Unexpired messages in the device's own mailbox (group logs not counted)."""

    @abc.abstractmethod
    async def mailbox_mark_sent(self, device_id: str, seqs: Sequence[int]) -> None:
        """Count one more delivery attempt for each message (so the next send sets DUP)."""

    @abc.abstractmethod
    async def mailbox_ack(self, device_id: str, seqs: Sequence[int], at: float) -> list[Outcome]:
        """Remove acknowledged messages and record a DELIVERED outcome for each.

        Unknown seqs are ignored. Returns the outcomes (emitted as OUTCOME signals).
        """

    @abc.abstractmethod
    async def mailbox_purge(self, device_id: str, at: float) -> list[Outcome]:
        """Remove every message of the mailbox, recording PURGED outcomes."""

    # --- group logs (fan-out on read) -------------------------------------------

    @abc.abstractmethod
    async def group_put(self, msg: MailboxMessage) -> MailboxMessage:
        """Append to the log of ``msg.group``; return it with ``seq`` set. Emits GROUP."""

    @abc.abstractmethod
    async def group_read(
        self, group: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        """Unexpired messages of the group log with seq > ``after_seq``, in seq order."""

    @abc.abstractmethod
    async def group_cursors(self, device_id: str) -> dict[str, int]:
        """The device's cursor (last acknowledged seq) in each of its groups and BROADCAST."""

    @abc.abstractmethod
    async def group_mark_sent(self, device_id: str, group: str, seq: int) -> None:
        """Remember that group messages up to ``seq`` were sent to the device (never moves back).

        So a later connection redelivers them with DUP set, as for mailbox messages.
        """

    @abc.abstractmethod
    async def group_marks(self, device_id: str) -> dict[str, int]:
        """The highest seq sent to the device in each of its groups (0 if none)."""

    @abc.abstractmethod
    async def group_ack(self, device_id: str, group: str, seq: int) -> None:
        """Advance the device's cursor in ``group`` to ``seq`` (never moves it back)."""

    # --- expiry -----------------------------------------------------------------

    @abc.abstractmethod
    async def expire(self, now: float) -> list[Outcome]:
        """Drop every expired mailbox and group message, recording EXPIRED outcomes.

        A group message gets one outcome with ``device=None``. Also ends expired
        inquiries and telemetry leases are left alone. Returns the outcomes.
        """

    # --- telemetry ----------------------------------------------------------------

    @abc.abstractmethod
    async def telemetry_append(self, records: Sequence[TelemetryRecord]) -> None:
        """Append durably, assigning increasing ``seq``. Emits one TELEMETRY signal."""

    @abc.abstractmethod
    async def telemetry_fetch(
        self,
        group: str,
        max_records: int,
        ack_timeout: float,
        now: float,
        from_latest: bool = False,
    ) -> TelemetryBatch:
        """Lease up to ``max_records`` for consumer group ``group``.

        First records whose earlier lease ran out (redelivery), then new ones.
        A group seen for the first time starts at the oldest retained record,
        or after the newest if ``from_latest``. Each record is leased to one
        fetch at a time; an unacked lease returns after ``ack_timeout``.
        """

    @abc.abstractmethod
    async def telemetry_ack(self, group: str, ack: str) -> int:
        """Settle the records of one fetch; returns how many (0 if the token is stale)."""

    @abc.abstractmethod
    async def telemetry_trim(self, before: float, keep_max: int) -> int:
        """Drop records received before ``before`` or beyond the newest ``keep_max``."""

    # --- inquiries ---------------------------------------------------------------------

    @abc.abstractmethod
    async def inquiry_put(self, inquiry: Inquiry) -> None:
        """Store a new inquiry (state PENDING). Emits INQUIRY."""

    @abc.abstractmethod
    async def inquiry_take(self, max_items: int, lease: float, now: float) -> list[Inquiry]:
        """Lease pending inquiries (and TAKEN ones whose lease ran out) to one taker."""

    @abc.abstractmethod
    async def inquiry_get(self, inquiry_id: str) -> Inquiry | None: ...

    @abc.abstractmethod
    async def inquiry_find(self, device_id: str, name: str, rid: str) -> Inquiry | None:
        """The newest inquiry of the device with this name and request id."""

    @abc.abstractmethod
    async def inquiry_set_state(self, inquiry_id: str, state: InquiryState) -> None: ...

    # --- feedback ----------------------------------------------------------------------

    @abc.abstractmethod
    async def outcome_put(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Record outcomes, assigning ``seq``. Emits one OUTCOME signal each."""

    @abc.abstractmethod
    async def outcome_read(self, after_seq: int, limit: int) -> list[Outcome]:
        """Retained outcomes with seq > ``after_seq``, in seq order."""

    @abc.abstractmethod
    async def outcome_trim(self, before: float) -> int: ...

    # --- MQTT sessions --------------------------------------------------------------------

    @abc.abstractmethod
    async def session_get(self, device_id: str) -> Session | None: ...

    @abc.abstractmethod
    async def session_put(self, session: Session) -> None: ...

    @abc.abstractmethod
    async def session_delete(self, device_id: str) -> None: ...

    # --- presence ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def presence_claim(self, device_id: str, owner: str, node: str, at: float) -> str | None:
        """Make ``owner`` (a connection id) the device's live session; return the previous owner.

        Atomic (compare-and-set on a cluster): of two racing claims, exactly one
        ends as owner. Emits ``Signal(KICK, device, owner)`` so the node holding
        the previous owner closes it.
        """

    @abc.abstractmethod
    async def presence_release(self, device_id: str, owner: str, at: float) -> None:
        """Mark the device offline (last_seen = at) only if ``owner`` still holds it."""

    @abc.abstractmethod
    async def presence_get(self, device_id: str) -> Presence | None: ...
