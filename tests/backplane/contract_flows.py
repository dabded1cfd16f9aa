"""Contract: inquiries and feedback (outcomes)."""

from __future__ import annotations

import time

from roost.backplane.base import Backplane, SignalKind
from roost.model import InquiryState, OutcomeKind

from .helpers import Recorder, inquiry, outcome, uid


class FlowContract:
    # --- inquiries ----------------------------------------------------------------------

    async def test_inquiry_put_stores_pending_and_signals(self, backplane: Backplane) -> None:
        rec = Recorder(backplane)
        inq = inquiry("d")
        await backplane.inquiry_put(inq)
        got = await backplane.inquiry_get(inq.id)
        assert got == inq and got.state is InquiryState.PENDING
        await rec.wait_for(SignalKind.INQUIRY)
        assert [s.key for s in rec.of(SignalKind.INQUIRY)] == [""]
        assert await backplane.inquiry_get("nope") is None

    async def test_take_leases_to_one_taker(self, backplane: Backplane) -> None:
        inq = inquiry("d")
        await backplane.inquiry_put(inq)
        now = time.time()
        (taken,) = await backplane.inquiry_take(10, 30.0, now)
        assert (taken.id, taken.state, taken.lease_until) == (inq.id, InquiryState.TAKEN,
                                                               now + 30.0)
        assert await backplane.inquiry_take(10, 30.0, now + 10) == []
        (again,) = await backplane.inquiry_take(10, 30.0, now + 31)
        assert again.id == inq.id
        got = await backplane.inquiry_get(inq.id)
        assert got is not None and got.state is InquiryState.TAKEN

    async def test_take_respects_max_and_age_order(self, backplane: Backplane) -> None:
        t = time.time()
        items = [inquiry("d", rid=f"r{i}", created_at=t - 10 + i) for i in range(3)]
        for inq in reversed(items):
            await backplane.inquiry_put(inq)
        first = await backplane.inquiry_take(2, 30.0, t)
        rest = await backplane.inquiry_take(2, 30.0, t)
        assert [i.id for i in first + rest] == [i.id for i in items]

    async def test_take_skips_expired_and_answered(self, backplane: Backplane) -> None:
        expired, answered = inquiry("d", ttl=5, rid="a"), inquiry("d", rid="b")
        await backplane.inquiry_put(expired)
        await backplane.inquiry_put(answered)
        await backplane.inquiry_set_state(answered.id, InquiryState.ANSWERING)
        assert await backplane.inquiry_take(10, 30.0, time.time() + 10) == []
        got = await backplane.inquiry_get(answered.id)
        assert got is not None and got.state is InquiryState.ANSWERING

    async def test_find_returns_the_newest(self, backplane: Backplane) -> None:
        t = time.time()
        old = inquiry("d", rid="r", created_at=t - 5)
        new = inquiry("d", rid="r", created_at=t)
        await backplane.inquiry_put(new)
        await backplane.inquiry_put(old)
        await backplane.inquiry_put(inquiry("d", rid="r", name="other", created_at=t + 1))
        await backplane.inquiry_put(inquiry("e", rid="r", created_at=t + 1))
        found = await backplane.inquiry_find("d", "route", "r")
        assert found is not None and found.id == new.id
        assert await backplane.inquiry_find("d", "route", "zzz") is None

    async def test_set_state_ended(self, backplane: Backplane) -> None:
        inq = inquiry("d")
        await backplane.inquiry_put(inq)
        await backplane.inquiry_set_state(inq.id, InquiryState.ENDED)
        got = await backplane.inquiry_get(inq.id)
        assert got is not None and got.state is InquiryState.ENDED
        assert await backplane.inquiry_take(10, 30.0, time.time()) == []

    # --- feedback ----------------------------------------------------------------------------

    async def test_outcome_put_assigns_seqs_and_signals(self, backplane: Backplane) -> None:
        rec = Recorder(backplane)
        response = outcome(uid("cmd"), kind="response", status=201, payload=b"done",
                           content_type="text/plain")
        stored = await backplane.outcome_put([outcome(uid("m"), OutcomeKind.REJECTED,
                                                      reason="mailbox_full"), response])
        assert 0 < stored[0].seq < stored[1].seq
        assert stored[1].status == 201 and stored[1].payload == b"done"
        assert stored[1].content_type == "text/plain"
        await rec.wait_for(SignalKind.OUTCOME, 2)
        assert [(s.key, s.data) for s in rec.of(SignalKind.OUTCOME)] == [
            (o.id, o) for o in stored]
        assert await backplane.outcome_read(0, 10) == stored

    async def test_outcomes_page_by_seq(self, backplane: Backplane) -> None:
        stored = await backplane.outcome_put([outcome(uid("m")) for _ in range(5)])
        page = await backplane.outcome_read(stored[1].seq, 2)
        assert page == stored[2:4]
        assert await backplane.outcome_read(stored[4].seq, 10) == []

    async def test_outcome_trim_drops_old_ones(self, backplane: Backplane) -> None:
        t = time.time()
        old = outcome(uid("m"))
        old.at = t - 100
        new = outcome(uid("m"))
        new.at = t
        await backplane.outcome_put([old, new])
        assert await backplane.outcome_trim(t - 50) == 1
        assert [o.id for o in await backplane.outcome_read(0, 10)] == [new.id]
