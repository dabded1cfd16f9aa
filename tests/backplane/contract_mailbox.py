"""Contract: device mailboxes, group logs with cursors, and expiry."""

from __future__ import annotations

import asyncio
import time

import pytest

from roost.backplane.base import Backplane, SignalKind
from roost.errors import MailboxFull, UnknownDevice
from roost.model import BROADCAST, InquiryState, MailboxMessage, MessageKind, OutcomeKind

from .helpers import Recorder, device, inquiry, message, registered


class MailboxContract:
    # --- put / read ------------------------------------------------------------------

    async def test_put_assigns_increasing_seqs_and_reads_in_order(
        self, backplane: Backplane
    ) -> None:
        device_id = await registered(backplane)
        sent = [await backplane.mailbox_put(message(device_id, payload=b"%d" % i), 10)
                for i in range(3)]
        assert sent[0].seq > 0 and sent[0].seq < sent[1].seq < sent[2].seq
        got = await backplane.mailbox_read(device_id, 0, 10, time.time())
        assert [m.seq for m in got] == [m.seq for m in sent]
        assert [m.payload for m in got] == [b"0", b"1", b"2"]

    async def test_message_round_trips(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        msg = message(device_id, kind=MessageKind.COMMAND, name="unlock", ref="cid-1",
                      content_type="application/json", props={"a": "1", "b": "x y"},
                      payload=b"\x00\xffbody")
        sent = await backplane.mailbox_put(msg, 10)
        (got,) = await backplane.mailbox_read(device_id, 0, 10, time.time())
        assert got == sent
        assert (got.id, got.device, got.kind, got.name, got.ref, got.content_type, got.props,
                got.payload, got.group, got.attempts) == (
            msg.id, device_id, MessageKind.COMMAND, "unlock", "cid-1", "application/json",
            {"a": "1", "b": "x y"}, b"\x00\xffbody", None, 0)
        assert got.expires_at == pytest.approx(msg.expires_at)

    async def test_seqs_are_not_reused_after_an_ack(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        first = await backplane.mailbox_put(message(device_id), 10)
        await backplane.mailbox_ack(device_id, [first.seq], 1.0)
        second = await backplane.mailbox_put(message(device_id), 10)
        assert second.seq > first.seq

    async def test_read_after_seq_with_limit(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        seqs = [(await backplane.mailbox_put(message(device_id), 10)).seq for _ in range(5)]
        now = time.time()
        assert [m.seq for m in await backplane.mailbox_read(device_id, seqs[1], 2, now)] == (
            seqs[2:4])
        assert await backplane.mailbox_read(device_id, seqs[4], 10, now) == []

    async def test_mailboxes_are_separate(self, backplane: Backplane) -> None:
        a, b = await registered(backplane), await registered(backplane)
        await backplane.mailbox_put(message(a), 10)
        assert await backplane.mailbox_read(b, 0, 10, time.time()) == []
        assert await backplane.mailbox_depth(b, time.time()) == 0

    async def test_put_to_unknown_device_raises(self, backplane: Backplane) -> None:
        with pytest.raises(UnknownDevice):
            await backplane.mailbox_put(message("ghost"), 10)

    async def test_put_beyond_max_depth_raises(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        for _ in range(3):
            await backplane.mailbox_put(message(device_id), 3)
        with pytest.raises(MailboxFull):
            await backplane.mailbox_put(message(device_id), 3)
        assert await backplane.mailbox_depth(device_id, time.time()) == 3
        await backplane.mailbox_put(message(device_id), 4)  # the limit is per call

    async def test_expired_messages_are_not_counted_nor_read(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        await backplane.mailbox_put(message(device_id, ttl=10), 10)
        keep = await backplane.mailbox_put(message(device_id, ttl=100), 10)
        later = time.time() + 50
        assert await backplane.mailbox_depth(device_id, later) == 1
        assert [m.id for m in await backplane.mailbox_read(device_id, 0, 10, later)] == [keep.id]

    async def test_expired_messages_free_their_place(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        for _ in range(2):
            await backplane.mailbox_put(message(device_id, ttl=1.0), 2)
        with pytest.raises(MailboxFull):
            await backplane.mailbox_put(message(device_id), 2)
        await asyncio.sleep(1.2)  # put counts depth at the real time; TTLs are >= 1 s
        await backplane.mailbox_put(message(device_id), 2)

    async def test_concurrent_puts_stop_exactly_at_max_depth(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        results = await asyncio.gather(
            *(backplane.mailbox_put(message(device_id), 50) for _ in range(100)),
            return_exceptions=True,
        )
        stored = [r for r in results if not isinstance(r, BaseException)]
        assert len(stored) == 50
        assert all(isinstance(r, MailboxFull) for r in results if isinstance(r, BaseException))
        assert len({m.seq for m in stored}) == 50
        assert await backplane.mailbox_depth(device_id, time.time()) == 50

    async def test_mark_sent_counts_attempts(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        a = await backplane.mailbox_put(message(device_id), 10)
        b = await backplane.mailbox_put(message(device_id), 10)
        await backplane.mailbox_mark_sent(device_id, [a.seq])
        await backplane.mailbox_mark_sent(device_id, [a.seq, b.seq])
        got = await backplane.mailbox_read(device_id, 0, 10, time.time())
        assert [m.attempts for m in got] == [2, 1]

    async def test_ack_removes_and_records_delivered(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        a = await backplane.mailbox_put(message(device_id, kind=MessageKind.COMMAND,
                                                name="unlock"), 10)
        b = await backplane.mailbox_put(message(device_id), 10)
        rec = Recorder(backplane)
        outcomes = await backplane.mailbox_ack(device_id, [a.seq, b.seq + 1000], 77.0)
        assert [(o.id, o.device, o.kind, o.name, o.outcome, o.at) for o in outcomes] == [
            (a.id, device_id, "command", "unlock", OutcomeKind.DELIVERED, 77.0)]
        assert [m.id for m in await backplane.mailbox_read(device_id, 0, 10, time.time())] == [
            b.id]
        assert await backplane.mailbox_ack(device_id, [a.seq], 78.0) == []
        await rec.wait_for(SignalKind.OUTCOME)
        assert [(s.key, s.data) for s in rec.of(SignalKind.OUTCOME)] == [(a.id, outcomes[0])]
        assert [o.id for o in await backplane.outcome_read(0, 100)] == [a.id]

    async def test_ack_ignores_seqs_of_other_devices(self, backplane: Backplane) -> None:
        a, b = await registered(backplane), await registered(backplane)
        msg = await backplane.mailbox_put(message(a), 10)
        assert await backplane.mailbox_ack(b, [msg.seq], 1.0) == []
        assert await backplane.mailbox_depth(a, time.time()) == 1

    async def test_purge_records_purged(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        sent = [await backplane.mailbox_put(message(device_id), 10) for _ in range(3)]
        outcomes = await backplane.mailbox_purge(device_id, 5.0)
        assert [(o.id, o.outcome, o.device) for o in outcomes] == [
            (m.id, OutcomeKind.PURGED, device_id) for m in sent]
        assert await backplane.mailbox_depth(device_id, time.time()) == 0
        assert await backplane.mailbox_purge(device_id, 6.0) == []

    async def test_put_signals_mailbox_once_visible(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        reads: list[asyncio.Future[list[MailboxMessage]]] = []

        def probe(signal: object) -> None:  # reads the moment the signal arrives
            reads.append(asyncio.ensure_future(
                backplane.mailbox_read(device_id, 0, 10, time.time())))

        rec = Recorder(backplane, probe)
        sent = await backplane.mailbox_put(message(device_id), 10)
        await rec.wait_for(SignalKind.MAILBOX)
        assert [s.key for s in rec.of(SignalKind.MAILBOX)] == [device_id]
        assert [m.id for m in await reads[0]] == [sent.id]

    # --- group logs ---------------------------------------------------------------------

    async def test_group_put_and_read(self, backplane: Backplane) -> None:
        rec = Recorder(backplane)
        sent = [await backplane.group_put(message(group="fleet", payload=b"%d" % i))
                for i in range(3)]
        await backplane.group_put(message(group="other"))
        assert sent[0].seq < sent[1].seq < sent[2].seq
        got = await backplane.group_read("fleet", sent[0].seq, 10, time.time())
        assert [(m.id, m.payload, m.group) for m in got] == [
            (m.id, m.payload, "fleet") for m in sent[1:]]
        await rec.wait_for(SignalKind.GROUP, 4)
        assert [s.key for s in rec.of(SignalKind.GROUP)] == ["fleet"] * 3 + ["other"]

    async def test_group_seqs_are_not_reused_after_expiry(self, backplane: Backplane) -> None:
        first = await backplane.group_put(message(group="g", ttl=5))
        await backplane.expire(time.time() + 10)
        second = await backplane.group_put(message(group="g"))
        assert second.seq > first.seq

    async def test_group_read_skips_expired(self, backplane: Backplane) -> None:
        await backplane.group_put(message(group=BROADCAST, ttl=10))
        keep = await backplane.group_put(message(group=BROADCAST, ttl=100))
        got = await backplane.group_read(BROADCAST, 0, 10, time.time() + 50)
        assert [m.id for m in got] == [keep.id]

    async def test_cursors_cover_groups_and_broadcast(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "a", "b")
        assert set(await backplane.group_cursors(device_id)) == {"a", "b", BROADCAST}

    async def test_new_device_does_not_see_earlier_group_messages(
        self, backplane: Backplane
    ) -> None:
        await backplane.group_put(message(group="fleet"))
        device_id = await registered(backplane, "fleet")
        cursors = await backplane.group_cursors(device_id)
        assert await backplane.group_read("fleet", cursors["fleet"], 10, time.time()) == []
        later = await backplane.group_put(message(group="fleet"))
        got = await backplane.group_read("fleet", cursors["fleet"], 10, time.time())
        assert [m.id for m in got] == [later.id]

    async def test_device_joining_later_starts_at_the_head(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "a")
        await backplane.group_put(message(group="b"))
        await backplane.device_update(device(device_id, ("a", "b")))
        cursors = await backplane.group_cursors(device_id)
        assert await backplane.group_read("b", cursors["b"], 10, time.time()) == []

    async def test_cursor_survives_update_unless_group_left(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "a", "b")
        msg = await backplane.group_put(message(group="a"))
        await backplane.group_ack(device_id, "a", msg.seq)
        got = await backplane.device_get(device_id)
        assert got is not None
        got.groups = ("a",)
        await backplane.device_update(got)
        cursors = await backplane.group_cursors(device_id)
        assert set(cursors) == {"a", BROADCAST} and cursors["a"] == msg.seq

    async def test_group_ack_never_moves_back(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "g")
        first = await backplane.group_put(message(group="g"))
        second = await backplane.group_put(message(group="g"))
        await backplane.group_ack(device_id, "g", second.seq)
        await backplane.group_ack(device_id, "g", first.seq)
        assert (await backplane.group_cursors(device_id))["g"] == second.seq
        await backplane.group_ack(device_id, BROADCAST, 0)

    async def test_group_sent_marks_start_at_zero_and_never_move_back(
        self, backplane: Backplane
    ) -> None:
        device_id = await registered(backplane, "g")
        assert await backplane.group_marks(device_id) == {"g": 0, BROADCAST: 0}
        first = await backplane.group_put(message(group="g"))
        second = await backplane.group_put(message(group="g"))
        await backplane.group_mark_sent(device_id, "g", second.seq)
        await backplane.group_mark_sent(device_id, "g", first.seq)
        assert (await backplane.group_marks(device_id))["g"] == second.seq
        assert (await backplane.group_cursors(device_id))["g"] < first.seq  # acks are separate

    # --- expiry ---------------------------------------------------------------------------

    async def test_expire_records_expired_outcomes(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        gone = await backplane.mailbox_put(message(device_id, ttl=10, name="n1"), 10)
        kept = await backplane.mailbox_put(message(device_id, ttl=1000), 10)
        group_gone = await backplane.group_put(message(group="g", ttl=10, name="n2"))
        rec = Recorder(backplane)
        now = time.time() + 100
        outcomes = await backplane.expire(now)
        by_id = {o.id: o for o in outcomes}
        assert set(by_id) == {gone.id, group_gone.id}
        o = by_id[gone.id]
        assert (o.device, o.kind, o.name, o.outcome, o.group) == (
            device_id, "notification", "n1", OutcomeKind.EXPIRED, None)
        o = by_id[group_gone.id]
        assert (o.device, o.group, o.name, o.outcome) == (None, "g", "n2", OutcomeKind.EXPIRED)
        assert [m.id for m in await backplane.mailbox_read(device_id, 0, 10, 0.0)] == [kept.id]
        assert await backplane.group_read("g", 0, 10, 0.0) == []
        assert await backplane.expire(now) == []
        await rec.wait_for(SignalKind.OUTCOME, 2)
        assert {s.key for s in rec.of(SignalKind.OUTCOME)} == {gone.id, group_gone.id}
        assert {o.id for o in await backplane.outcome_read(0, 10)} == {gone.id, group_gone.id}

    async def test_expire_ends_expired_inquiries(self, backplane: Backplane) -> None:
        short, long = inquiry("d", ttl=10, rid="r1"), inquiry("d", ttl=1000, rid="r2")
        await backplane.inquiry_put(short)
        await backplane.inquiry_put(long)
        await backplane.expire(time.time() + 100)
        ended = await backplane.inquiry_get(short.id)
        assert ended is not None and ended.state is InquiryState.ENDED
        alive = await backplane.inquiry_get(long.id)
        assert alive is not None and alive.state is InquiryState.PENDING
