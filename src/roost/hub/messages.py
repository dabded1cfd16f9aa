"""Service-to-device messages: commands, notifications, mailbox views and purges.

Every message gets a TTL (default 1 h, at most 48 h) and ends with one
outcome in the feedback log: delivered, expired, rejected or purged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from roost.backplane.base import Backplane, Signal, SignalKind
from roost.config import Settings
from roost.errors import InvalidInput, MailboxFull, PayloadTooLarge, Timeout, UnknownDevice
from roost.hub.views import CommandResult
from roost.model import (
    BROADCAST,
    MailboxMessage,
    MessageKind,
    Outcome,
    OutcomeKind,
    check_id,
)

RESPONSE_KIND = "response"
MAX_PENDING = 100_000  # more unread group messages than any device could hold
COMMAND_KEY = "command_id_key"


def new_message_id() -> str:
    return secrets.token_hex(8)


def check_name(name: str, what: str, *, allow_slash: bool = False) -> str:
    """A command name / notification topic: topic levels without wildcards or ``$``."""
    levels = name.split("/") if allow_slash else [name]
    for level in levels:
        try:
            check_id(level, what)
        except InvalidInput:
            raise InvalidInput(
                f"invalid {what} {name!r}: levels of 1-128 letters, digits or . _ : @ = ~ -"
            ) from None
    return name


class Messages:
    def __init__(self, backplane: Backplane, settings: Settings) -> None:
        self._bp = backplane
        self._settings = settings
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._cid_key = b""
        backplane.signals.subscribe(self._on_signal)

    async def start(self) -> None:
        """Load the key that signs command ids (shared by every node of a backplane)."""
        key = await self._bp.meta_put_if_absent(COMMAND_KEY, secrets.token_hex(32))
        self._cid_key = bytes.fromhex(key)

    # --- command ids ---------------------------------------------------------------

    def new_command_id(self, device: str) -> str:
        """``nonce + MAC(device, nonce)``: only the addressed device can answer it.

        A device learning (or guessing) another device's command id still
        cannot answer for it, because the id is bound to the target device,
        and checking it needs no lookup on any node.
        """
        nonce = secrets.token_hex(8)
        return nonce + self._mac(device, nonce)

    def _mac(self, device: str, nonce: str) -> str:
        message = f"{device}/{nonce}".encode()
        return hmac.new(self._cid_key, message, hashlib.sha256).hexdigest()[:16]

    def is_command_of(self, device: str, cid: str) -> bool:
        if len(cid) != 32:
            return False
        return hmac.compare_digest(cid[16:], self._mac(device, cid[:16]))

    # --- sending ---------------------------------------------------------------

    def _ttl(self, ttl: float | None) -> float:
        if ttl is None:
            return self._settings.ttl_default
        if not 0 < ttl <= self._settings.ttl_max:
            raise InvalidInput(f"ttl must be between 0 and {self._settings.ttl_max:g} seconds")
        return float(ttl)

    def _check_payload(self, payload: bytes) -> None:
        # Leave room for the topic and properties within one MQTT packet.
        limit = self._settings.max_packet_size - 1024
        if len(payload) > limit:
            raise PayloadTooLarge(f"payload is {len(payload)} bytes; the limit is {limit}")

    def build(
        self,
        kind: MessageKind,
        device: str,
        name: str,
        payload: bytes,
        ttl: float | None,
        content_type: str | None,
        *,
        ref: str = "",
        props: dict[str, str] | None = None,
        group: str | None = None,
    ) -> MailboxMessage:
        self._check_payload(payload)
        now = time.time()
        return MailboxMessage(
            id=new_message_id(),
            device=device,
            kind=kind,
            name=name,
            payload=payload,
            created_at=now,
            expires_at=now + self._ttl(ttl),
            ref=ref,
            content_type=content_type,
            props=props or {},
            group=group,
        )

    async def put(self, msg: MailboxMessage) -> MailboxMessage:
        """Queue in the device's mailbox; a refusal is recorded as a ``rejected`` outcome."""
        try:
            return await self._bp.mailbox_put(msg, self._settings.mailbox_depth)
        except (MailboxFull, UnknownDevice) as exc:
            exc.detail["id"] = msg.id  # the sender can match the `rejected` outcome
            await self._bp.outcome_put(
                [
                    Outcome(
                        id=msg.id,
                        device=msg.device,
                        kind=str(msg.kind),
                        name=msg.name,
                        outcome=OutcomeKind.REJECTED,
                        at=time.time(),
                        reason=exc.code,
                    )
                ]
            )
            raise

    async def command(
        self,
        device: str,
        name: str,
        payload: bytes,
        *,
        ttl: float | None = None,
        content_type: str | None = None,
        wait: float | None = None,
    ) -> CommandResult:
        """Send a command; with ``wait``, also wait that long for the device's response.

        Raises :class:`Timeout` (carrying the command id) when no response came
        in time; the command stays queued until its TTL.
        """
        check_name(name, "command name")
        if wait is not None:
            self._check_wait(wait)
        cid = self.new_command_id(device)
        msg = self.build(MessageKind.COMMAND, device, name, payload, ttl, content_type, ref=cid)
        msg.id = cid
        waiter = self._waiter(cid) if wait is not None else None
        try:
            await self.put(msg)
            if waiter is None:
                return CommandResult(id=cid)
            return await self._await_response(cid, waiter, wait or 0.0)
        finally:
            self._waiters.pop(cid, None)

    def _check_wait(self, wait: float) -> None:
        if not 0 <= wait <= self._settings.max_wait:
            raise InvalidInput(f"wait must be between 0 and {self._settings.max_wait:g} seconds")

    def _waiter(self, cid: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters[cid] = future
        return future

    async def _await_response(
        self, cid: str, waiter: asyncio.Future[Outcome], wait: float
    ) -> CommandResult:
        try:
            response = await asyncio.wait_for(waiter, wait)
        except TimeoutError:
            raise Timeout(
                f"device did not answer command {cid} within {wait:g} s", id=cid
            ) from None
        return CommandResult(
            id=cid,
            status=response.status,
            payload=response.payload,
            content_type=response.content_type,
        )

    def release_waiters(self) -> None:
        """Shutting down: answer every command wait now, as a timeout carrying its id."""
        for cid, waiter in list(self._waiters.items()):
            if not waiter.done():
                waiter.set_exception(Timeout("the node is shutting down", id=cid))

    def _on_signal(self, signal: Signal) -> None:
        if signal.kind is not SignalKind.OUTCOME:
            return
        outcome = signal.data
        if isinstance(outcome, Outcome) and outcome.kind == RESPONSE_KIND:
            self._answer(outcome)

    def _answer(self, response: Outcome) -> None:
        waiter = self._waiters.get(response.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    async def notify(
        self,
        device: str,
        topic: str,
        payload: bytes,
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> MailboxMessage:
        check_name(topic, "notification topic", allow_slash=True)
        msg = self.build(MessageKind.NOTIFICATION, device, topic, payload, ttl, content_type)
        return await self.put(msg)

    async def notify_group(
        self,
        group: str,
        topic: str,
        payload: bytes,
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> MailboxMessage:
        """Store once in the group's log; each member reads it with its own cursor."""
        if group != BROADCAST:
            check_id(group, "group id")
        check_name(topic, "notification topic", allow_slash=True)
        props = {} if group == BROADCAST else {"group": group}
        msg = self.build(
            MessageKind.NOTIFICATION,
            "",
            topic,
            payload,
            ttl,
            content_type,
            props=props,
            group=group,
        )
        return await self._bp.group_put(msg)

    async def broadcast(
        self,
        topic: str,
        payload: bytes,
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> MailboxMessage:
        return await self.notify_group(
            BROADCAST, topic, payload, ttl=ttl, content_type=content_type
        )

    # --- the device's answer ------------------------------------------------------

    async def respond(self, device: str, cid: str, status: int, payload: bytes,
                      content_type: str | None = None) -> None:
        """Record a device's response to command ``cid`` (wakes a waiting sender anywhere).

        Raises ``InvalidInput`` unless ``cid`` is a command sent to this very device.
        """
        if not self.is_command_of(device, cid):
            raise InvalidInput(f"{cid!r} is not the id of a command sent to {device}")
        response = Outcome(
            id=cid,
            device=device,
            kind=RESPONSE_KIND,
            name="",
            outcome=OutcomeKind.DELIVERED,
            at=time.time(),
            status=status,
            payload=payload,
            content_type=content_type,
        )
        # A sender waiting on this node has its answer now, not after the commit: the
        # commit is for the feedback log and the device's PUBACK, which still wait for it.
        self._answer(response)
        await self._bp.outcome_put([response])

    # --- mailbox views ------------------------------------------------------------

    async def pending(self, device: str, limit: int = 1000) -> list[MailboxMessage]:
        """The device's pending messages: its own mailbox, then unread group messages."""
        device_obj = await self._bp.device_get(device)
        if device_obj is None:
            raise UnknownDevice(f"no device {device!r}")
        now = time.time()
        messages = await self._bp.mailbox_read(device, 0, limit, now)
        cursors = await self._bp.group_cursors(device)
        for group, cursor in cursors.items():
            messages.extend(await self._bp.group_read(group, cursor, limit, now))
        return messages

    async def purge(self, device: str) -> int:
        """Empty the device's mailbox (``purged`` outcomes) and skip its unread group messages."""
        if await self._bp.device_get(device) is None:
            raise UnknownDevice(f"no device {device!r}")
        purged = len(await self._bp.mailbox_purge(device, time.time()))
        now = time.time()
        for group, cursor in (await self._bp.group_cursors(device)).items():
            unread = await self._bp.group_read(group, cursor, MAX_PENDING, now)
            if unread:
                await self._bp.group_ack(device, group, unread[-1].seq)
                purged += len(unread)
        return purged
