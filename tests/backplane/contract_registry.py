"""Contract: life cycle, settings, devices, tokens, sessions and presence."""

from __future__ import annotations

import asyncio
import time

import pytest

from roost.backplane.base import Backplane, SignalKind
from roost.errors import AlreadyExists, UnknownDevice
from roost.model import BROADCAST, ApiToken, Session

from .helpers import Recorder, device, message, registered, uid


class RegistryContract:
    # --- life cycle ----------------------------------------------------------------

    async def test_start_again_is_harmless(self, backplane: Backplane) -> None:
        await backplane.start()
        await backplane.check()
        assert await backplane.device_count() == 0

    # --- meta ----------------------------------------------------------------------

    async def test_meta_get_of_missing_key_is_none(self, backplane: Backplane) -> None:
        assert await backplane.meta_get("nope") is None

    async def test_meta_put_if_absent_keeps_the_first_value(self, backplane: Backplane) -> None:
        assert await backplane.meta_put_if_absent("admin", "first") == "first"
        assert await backplane.meta_put_if_absent("admin", "second") == "first"
        assert await backplane.meta_get("admin") == "first"

    async def test_racing_meta_puts_agree(self, backplane: Backplane) -> None:
        values = await asyncio.gather(
            *(backplane.meta_put_if_absent("race", f"v{i}") for i in range(10))
        )
        assert len(set(values)) == 1
        assert await backplane.meta_get("race") == values[0]

    # --- devices ---------------------------------------------------------------------

    async def test_device_round_trips(self, backplane: Backplane) -> None:
        d = device(uid("dev"), ("zeta", "alpha"), metadata={"model": "T-7", "n": 3},
                   enabled=False)
        await backplane.device_create(d)
        got = await backplane.device_get(d.id)
        assert got is not None
        assert (got.id, got.key_hash, got.groups, got.metadata, got.enabled, got.last_seen) == (
            d.id, d.key_hash, ("zeta", "alpha"), {"model": "T-7", "n": 3}, False, None)
        assert got.created_at == pytest.approx(d.created_at)

    async def test_device_create_twice_raises(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        with pytest.raises(AlreadyExists):
            await backplane.device_create(device(device_id))

    async def test_racing_creates_of_one_id_let_exactly_one_win(
        self, backplane: Backplane
    ) -> None:
        device_id = uid("dev")
        results = await asyncio.gather(
            *(backplane.device_create(device(device_id)) for _ in range(5)),
            return_exceptions=True,
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, AlreadyExists) for r in results if r is not None)

    async def test_unknown_device_is_none(self, backplane: Backplane) -> None:
        assert await backplane.device_get("ghost") is None

    async def test_device_update_replaces_fields_and_signals(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "a", "b")
        rec = Recorder(backplane)
        await backplane.device_update(
            device(device_id, ("c", "a"), key_hash="sha256$22$33", enabled=False,
                   metadata={"x": 1}))
        got = await backplane.device_get(device_id)
        assert got is not None
        assert (got.groups, got.key_hash, got.enabled, got.metadata) == (
            ("c", "a"), "sha256$22$33", False, {"x": 1})
        await rec.wait_for(SignalKind.DEVICE)
        assert [s.key for s in rec.of(SignalKind.DEVICE)] == [device_id]

    async def test_device_update_of_unknown_raises(self, backplane: Backplane) -> None:
        with pytest.raises(UnknownDevice):
            await backplane.device_update(device("ghost"))

    async def test_device_delete_removes_everything_of_it(self, backplane: Backplane) -> None:
        device_id = await registered(backplane, "g")
        await backplane.mailbox_put(message(device_id), max_depth=10)
        await backplane.session_put(Session(device_id, {"devices/x/#": 1}, None))
        rec = Recorder(backplane)
        assert await backplane.device_delete(device_id) is True
        assert await backplane.device_get(device_id) is None
        assert await backplane.mailbox_read(device_id, 0, 10, time.time()) == []
        assert await backplane.group_cursors(device_id) == {}
        assert await backplane.session_get(device_id) is None
        assert await backplane.device_delete(device_id) is False
        await rec.wait_for(SignalKind.DEVICE)
        assert [s.key for s in rec.of(SignalKind.DEVICE)] == [device_id]
        with pytest.raises(UnknownDevice):
            await backplane.mailbox_put(message(device_id), max_depth=10)

    async def test_device_list_pages_in_id_order(self, backplane: Backplane) -> None:
        ids = [f"dev-{c}" for c in "ecadb"]
        for device_id in ids:
            await backplane.device_create(device(device_id))
        first = await backplane.device_list(None, 2)
        second = await backplane.device_list(first[-1].id, 2)
        third = await backplane.device_list(second[-1].id, 2)
        assert [d.id for d in first + second + third] == sorted(ids)
        assert await backplane.device_list(third[-1].id, 2) == []
        assert await backplane.device_count() == 5

    async def test_device_list_filters_by_group(self, backplane: Backplane) -> None:
        await backplane.device_create(device("d1", ("red",)))
        await backplane.device_create(device("d2", ("blue",)))
        await backplane.device_create(device("d3", ("red", "blue")))
        await backplane.device_create(device("d4", ("red",)))
        page = await backplane.device_list(None, 2, group="red")
        assert [d.id for d in page] == ["d1", "d3"]
        assert page[1].groups == ("red", "blue")
        assert [d.id for d in await backplane.device_list("d3", 10, group="red")] == ["d4"]
        assert await backplane.device_list(None, 10, group="green") == []

    async def test_device_touch_sets_last_seen(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        await backplane.device_touch(device_id, 1234.5)
        got = await backplane.device_get(device_id)
        assert got is not None and got.last_seen == 1234.5

    async def test_device_import_skips_existing_ids(self, backplane: Backplane) -> None:
        await backplane.device_create(device("old", metadata={"keep": True}))
        batch = [device("new-1", ("g",)), device("old"), device("new-2"), device("new-1")]
        assert await backplane.device_import(batch) == 2
        assert await backplane.device_count() == 3
        old = await backplane.device_get("old")
        assert old is not None and old.metadata == {"keep": True}
        new = await backplane.device_get("new-1")
        assert new is not None and new.groups == ("g",)
        assert set(await backplane.group_cursors("new-1")) == {"g", BROADCAST}

    async def test_imported_devices_start_at_the_group_heads(self, backplane: Backplane) -> None:
        await backplane.group_put(message(group="g"))
        await backplane.group_put(message(group=BROADCAST))
        await backplane.device_import([device("imp", ("g",))])
        cursors = await backplane.group_cursors("imp")
        now = time.time()
        assert await backplane.group_read("g", cursors["g"], 10, now) == []
        assert await backplane.group_read(BROADCAST, cursors[BROADCAST], 10, now) == []

    # --- tokens ------------------------------------------------------------------------

    async def test_tokens(self, backplane: Backplane) -> None:
        a = ApiToken("tok_a", "hash-a", ("admin",), "first", 1.0)
        b = ApiToken("tok_b", "hash-b", ("telemetry:read", "devices:write"), "", 2.0)
        await backplane.token_create(b)
        await backplane.token_create(a)
        assert await backplane.token_find("hash-b") == b
        assert await backplane.token_find("hash-x") is None
        assert sorted(t.id for t in await backplane.token_list()) == ["tok_a", "tok_b"]
        assert await backplane.token_delete("tok_a") is True
        assert await backplane.token_delete("tok_a") is False
        assert await backplane.token_find("hash-a") is None
        assert await backplane.token_list() == [b]

    async def test_token_id_taken_raises(self, backplane: Backplane) -> None:
        await backplane.token_create(ApiToken("tok_a", "hash-a"))
        with pytest.raises(AlreadyExists):
            await backplane.token_create(ApiToken("tok_a", "hash-other"))

    # --- sessions ------------------------------------------------------------------------

    async def test_sessions(self, backplane: Backplane) -> None:
        assert await backplane.session_get("d") is None
        await backplane.session_put(Session("d", {"devices/d/commands/#": 1}, None))
        await backplane.session_put(Session("d", {"devices/d/replies/#": 0}, 99.5))
        assert await backplane.session_get("d") == Session("d", {"devices/d/replies/#": 0}, 99.5)
        await backplane.session_delete("d")
        await backplane.session_delete("d")
        assert await backplane.session_get("d") is None

    # --- presence ---------------------------------------------------------------------------

    async def test_first_claim_has_no_previous_owner(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        rec = Recorder(backplane)
        assert await backplane.presence_get(device_id) is None
        assert await backplane.presence_claim(device_id, "conn-1", "node-a", 10.0) is None
        p = await backplane.presence_get(device_id)
        assert p is not None and (p.connected, p.node, p.since) == (True, "node-a", 10.0)
        assert rec.of(SignalKind.KICK) == []

    async def test_later_claim_wins_and_kicks(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        await backplane.presence_claim(device_id, "conn-1", "node-a", 10.0)
        rec = Recorder(backplane)
        assert await backplane.presence_claim(device_id, "conn-2", "node-b", 11.0) == "conn-1"
        await rec.wait_for(SignalKind.KICK)
        kicks = rec.of(SignalKind.KICK)
        assert [(s.key, s.data) for s in kicks] == [(device_id, "conn-2")]
        p = await backplane.presence_get(device_id)
        assert p is not None and (p.connected, p.node) == (True, "node-b")

    async def test_release_only_by_the_owner(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        await backplane.presence_claim(device_id, "conn-1", "node-a", 10.0)
        await backplane.presence_claim(device_id, "conn-2", "node-a", 11.0)
        await backplane.presence_release(device_id, "conn-1", 12.0)  # stale: ignored
        p = await backplane.presence_get(device_id)
        assert p is not None and p.connected
        await backplane.presence_release(device_id, "conn-2", 13.0)
        p = await backplane.presence_get(device_id)
        assert p is not None and not p.connected and p.last_seen == 13.0
        got = await backplane.device_get(device_id)
        assert got is not None and got.last_seen == 13.0
        assert await backplane.presence_claim(device_id, "conn-3", "node-a", 14.0) is None

    async def test_racing_claims_have_one_winner(self, backplane: Backplane) -> None:
        device_id = await registered(backplane)
        owners = [f"conn-{i}" for i in range(8)]
        previous = await asyncio.gather(
            *(backplane.presence_claim(device_id, o, "n", 1.0) for o in owners)
        )
        # The claims happened in some order: each saw the one before it.
        assert previous.count(None) == 1
        seen = [p for p in previous if p is not None]
        assert len(set(seen)) == len(seen) == len(owners) - 1
        last = (set(owners) - set(seen)).pop()
        await backplane.presence_release(device_id, last, 2.0)
        p = await backplane.presence_get(device_id)
        assert p is not None and not p.connected
