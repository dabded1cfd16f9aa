"""Contract: the telemetry log and its consumer groups."""

from __future__ import annotations

import time

from roost.backplane.base import Backplane, SignalKind

from .helpers import Recorder, record


async def _append(backplane: Backplane, n: int, start: int = 0) -> list[int]:
    records = [record("dev", i) for i in range(start, start + n)]
    await backplane.telemetry_append(records)
    return [r.seq for r in records]


class TelemetryContract:
    async def test_append_assigns_increasing_seqs(self, backplane: Backplane) -> None:
        first = await _append(backplane, 3)
        second = await _append(backplane, 2, 3)
        seqs = first + second
        assert seqs[0] > 0 and seqs == sorted(set(seqs))

    async def test_records_round_trip_in_order(self, backplane: Backplane) -> None:
        records = [record("a", 0), record("b", 1)]
        records[1].content_type = "application/cbor"
        records[0].path = ""
        await backplane.telemetry_append(records)
        batch = await backplane.telemetry_fetch("g", 10, 30.0, time.time())
        assert batch.records == records
        assert batch.ack is not None

    async def test_append_signals_once_per_call(self, backplane: Backplane) -> None:
        rec = Recorder(backplane)
        await _append(backplane, 5)
        await _append(backplane, 1)
        await rec.wait_for(SignalKind.TELEMETRY, 2)
        assert [s.key for s in rec.of(SignalKind.TELEMETRY)] == ["", ""]

    async def test_empty_fetch_has_no_ack_token(self, backplane: Backplane) -> None:
        batch = await backplane.telemetry_fetch("g", 10, 30.0, time.time())
        assert (batch.records, batch.ack) == ([], None)

    async def test_each_group_sees_every_record(self, backplane: Backplane) -> None:
        seqs = await _append(backplane, 4)
        now = time.time()
        for group in ("archive", "alerts"):
            batch = await backplane.telemetry_fetch(group, 10, 30.0, now)
            assert [r.seq for r in batch.records] == seqs

    async def test_fetches_in_one_group_split_the_records(self, backplane: Backplane) -> None:
        seqs = await _append(backplane, 5)
        now = time.time()
        one = await backplane.telemetry_fetch("g", 3, 30.0, now)
        two = await backplane.telemetry_fetch("g", 3, 30.0, now)
        assert [r.seq for r in one.records] == seqs[:3]
        assert [r.seq for r in two.records] == seqs[3:]
        assert one.ack != two.ack
        assert (await backplane.telemetry_fetch("g", 3, 30.0, now)).records == []

    async def test_unacked_lease_comes_back_after_timeout(self, backplane: Backplane) -> None:
        seqs = await _append(backplane, 3)
        now = time.time()
        first = await backplane.telemetry_fetch("g", 10, 30.0, now)
        assert (await backplane.telemetry_fetch("g", 10, 30.0, now + 10)).records == []
        again = await backplane.telemetry_fetch("g", 10, 30.0, now + 31)
        assert [r.seq for r in again.records] == seqs
        assert again.ack is not None and again.ack != first.ack
        assert first.ack is not None
        assert await backplane.telemetry_ack("g", first.ack) == 0  # stale: re-leased
        assert await backplane.telemetry_ack("g", again.ack) == 3
        assert (await backplane.telemetry_fetch("g", 10, 30.0, now + 100)).records == []

    async def test_redelivery_comes_before_new_records(self, backplane: Backplane) -> None:
        old = await _append(backplane, 2)
        now = time.time()
        await backplane.telemetry_fetch("g", 10, 5.0, now)
        new = await _append(backplane, 2, 2)
        batch = await backplane.telemetry_fetch("g", 3, 5.0, now + 6)
        assert [r.seq for r in batch.records] == old + new[:1]

    async def test_ack_settles_only_its_own_fetch(self, backplane: Backplane) -> None:
        await _append(backplane, 4)
        now = time.time()
        one = await backplane.telemetry_fetch("g", 2, 30.0, now)
        two = await backplane.telemetry_fetch("g", 2, 30.0, now)
        assert one.ack is not None and two.ack is not None
        assert await backplane.telemetry_ack("g", one.ack) == 2
        assert await backplane.telemetry_ack("g", one.ack) == 0
        back = await backplane.telemetry_fetch("g", 10, 30.0, now + 31)
        assert back.records == two.records

    async def test_unknown_token_acks_nothing(self, backplane: Backplane) -> None:
        await _append(backplane, 2)
        batch = await backplane.telemetry_fetch("g", 10, 30.0, time.time())
        assert await backplane.telemetry_ack("g", "no-such-token") == 0
        assert batch.ack is not None
        assert await backplane.telemetry_ack("other-group", batch.ack) == 0
        assert await backplane.telemetry_ack("g", batch.ack) == 2

    async def test_from_latest_starts_after_the_newest(self, backplane: Backplane) -> None:
        await _append(backplane, 3)
        now = time.time()
        assert (await backplane.telemetry_fetch("live", 10, 30.0, now, from_latest=True)).records \
            == []
        new = await _append(backplane, 2, 3)
        batch = await backplane.telemetry_fetch("live", 10, 30.0, now, from_latest=True)
        assert [r.seq for r in batch.records] == new

    async def test_trim_drops_old_records(self, backplane: Backplane) -> None:
        t = time.time()
        old = [record("d", i, at=t - 100 + i) for i in range(3)]
        new = [record("d", i, at=t + i) for i in range(3, 6)]
        await backplane.telemetry_append(old + new)
        assert await backplane.telemetry_trim(t - 50, 1000) == 3
        assert await backplane.telemetry_trim(t - 50, 2) == 1
        batch = await backplane.telemetry_fetch("late", 10, 30.0, time.time())
        assert [r.seq for r in batch.records] == [r.seq for r in new[1:]]

    async def test_seqs_are_not_reused_after_trimming_all(self, backplane: Backplane) -> None:
        (before,) = await _append(backplane, 1)
        await backplane.telemetry_fetch("g", 10, 30.0, time.time())
        assert await backplane.telemetry_trim(time.time() + 10, 1000) == 1
        (after,) = await _append(backplane, 1)
        assert after > before
        batch = await backplane.telemetry_fetch("g", 10, 30.0, time.time())
        assert [r.seq for r in batch.records] == [after]

    async def test_new_group_starts_at_oldest_retained(self, backplane: Backplane) -> None:
        t = time.time()
        records = [record("d", i, at=t - 100 + 50 * i) for i in range(3)]
        await backplane.telemetry_append(records)
        await backplane.telemetry_trim(t - 75, 1000)
        batch = await backplane.telemetry_fetch("fresh", 10, 30.0, time.time())
        assert [r.seq for r in batch.records] == [r.seq for r in records[1:]]
