"""/v1/devices: register, read, change, remove, rotate keys, list, import."""

from __future__ import annotations

import httpx
from service_helpers import register

from roost.hub.auth import verify_key
from roost.hub.hub import Hub

DEVICE_FIELDS = {
    "id",
    "groups",
    "metadata",
    "enabled",
    "created_at",
    "connected",
    "last_seen",
    "mailbox_depth",
}


async def test_register_returns_the_key_once(client: httpx.AsyncClient, hub: Hub) -> None:
    r = await client.post(
        "/v1/devices", json={"id": "truck-7", "groups": ["fleet"], "metadata": {"vin": "X1"}}
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "key", "groups"}
    assert body["id"] == "truck-7" and body["groups"] == ["fleet"]
    stored = await hub.devices.get("truck-7")
    assert verify_key(body["key"], stored.key_hash)
    assert stored.metadata == {"vin": "X1"}


async def test_register_with_own_key(client: httpx.AsyncClient, hub: Hub) -> None:
    key = "a-key-of-twenty-chars"
    r = await client.post("/v1/devices", json={"id": "lamp-1", "key": key})
    assert r.status_code == 201 and r.json()["key"] == key
    assert verify_key(key, (await hub.devices.get("lamp-1")).key_hash)


async def test_register_twice_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "dup")
    r = await client.post("/v1/devices", json={"id": "dup"})
    assert r.status_code == 409
    assert r.json()["error"] == "exists"


async def test_register_bad_id_is_422(client: httpx.AsyncClient) -> None:
    for bad in ["has space", "a/b", "wild+", "#", "$sys", ""]:
        r = await client.post("/v1/devices", json={"id": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"] == "invalid_id"


async def test_register_body_checks(client: httpx.AsyncClient) -> None:
    cases = [
        ({"groups": []}, "'id' is required"),
        ({"id": 5}, "'id' must be a string"),
        ({"id": "d", "groups": "fleet"}, "'groups' must be a list"),
        ({"id": "d", "groups": [1]}, "'groups' must be a list of strings"),
        ({"id": "d", "metadata": [1]}, "'metadata' must be a JSON object"),
        ({"id": "d", "colour": "red"}, "unknown field"),
        ({"id": "d", "key": "short"}, "at least 16"),
        ([1, 2], "must be a JSON object"),
    ]
    for body, message in cases:
        r = await client.post("/v1/devices", json=body)
        assert r.status_code == 422, body
        assert r.json()["error"] == "invalid"
        assert message in r.json()["message"], (body, r.json())


async def test_register_bad_json_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/devices", content=b"{not json", headers={"content-type": "x"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid"
    assert "not valid JSON" in r.json()["message"]
    r = await client.post("/v1/devices")
    assert r.status_code == 422


async def test_show_device(client: httpx.AsyncClient) -> None:
    await register(client, "d1", "g1", "g2")
    r = await client.get("/v1/devices/d1")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == DEVICE_FIELDS
    assert body["id"] == "d1" and body["groups"] == ["g1", "g2"]
    assert body["enabled"] is True and body["connected"] is False
    assert body["last_seen"] is None and body["mailbox_depth"] == 0
    assert isinstance(body["created_at"], float)


async def test_show_unknown_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/devices/ghost")
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_device", "message": "no device 'ghost'"}


async def test_patch_device(client: httpx.AsyncClient) -> None:
    await register(client, "d1", "g1")
    r = await client.patch(
        "/v1/devices/d1", json={"groups": ["g2"], "enabled": False, "metadata": {"k": 1}}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["groups"] == ["g2"] and body["enabled"] is False and body["metadata"] == {"k": 1}
    r = await client.patch("/v1/devices/d1", json={"enabled": True})
    assert r.json()["enabled"] is True and r.json()["groups"] == ["g2"]


async def test_patch_checks(client: httpx.AsyncClient) -> None:
    await register(client, "d1")
    r = await client.patch("/v1/devices/d1", json={"enabled": "yes"})
    assert r.status_code == 422 and "'enabled' must be true or false" in r.json()["message"]
    r = await client.patch("/v1/devices/d1", json={"groups": ["bad group"]})
    assert r.status_code == 422
    r = await client.patch("/v1/devices/ghost", json={"enabled": True})
    assert r.status_code == 404


async def test_delete_device(client: httpx.AsyncClient) -> None:
    await register(client, "d1")
    r = await client.delete("/v1/devices/d1")
    assert r.status_code == 204 and r.content == b""
    assert (await client.get("/v1/devices/d1")).status_code == 404
    assert (await client.delete("/v1/devices/d1")).status_code == 404


async def test_rotate_key(client: httpx.AsyncClient, hub: Hub) -> None:
    old = await register(client, "d1")
    r = await client.post("/v1/devices/d1/key")
    assert r.status_code == 200
    assert set(r.json()) == {"id", "key"} and r.json()["id"] == "d1"
    stored = await hub.devices.get("d1")
    assert verify_key(r.json()["key"], stored.key_hash)
    assert not verify_key(old, stored.key_hash)
    assert (await client.post("/v1/devices/ghost/key")).status_code == 404


async def test_list_pages(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await register(client, f"d{i}", "even" if i % 2 == 0 else "odd")
    r = await client.get("/v1/devices", params={"limit": 2})
    assert r.status_code == 200
    assert [d["id"] for d in r.json()["devices"]] == ["d0", "d1"]
    assert r.json()["next"] == "d1"
    r = await client.get("/v1/devices", params={"limit": 2, "after": "d3"})
    assert [d["id"] for d in r.json()["devices"]] == ["d4"]
    assert r.json()["next"] is None
    r = await client.get("/v1/devices", params={"group": "even"})
    assert [d["id"] for d in r.json()["devices"]] == ["d0", "d2", "d4"]
    assert set(r.json()["devices"][0]) == DEVICE_FIELDS


async def test_list_limit_checks(client: httpx.AsyncClient) -> None:
    for bad in ["0", "1001", "ten"]:
        r = await client.get("/v1/devices", params={"limit": bad})
        assert r.status_code == 422
        assert "'limit'" in r.json()["message"]


async def test_import_csv(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "old")
    csv = "id,groups,key\nnew-1,a;b,\nold,,\nnew-2,,my-own-key-of-20-chars\n\n"
    r = await client.post("/v1/devices/import", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and body["skipped"] == 1
    keys = {k["id"]: k["key"] for k in body["keys"]}
    assert set(keys) == {"new-1", "new-2"}
    assert keys["new-2"] == "my-own-key-of-20-chars"
    assert (await hub.devices.get("new-1")).groups == ("a", "b")
    assert verify_key(keys["new-1"], (await hub.devices.get("new-1")).key_hash)


async def test_import_json(client: httpx.AsyncClient) -> None:
    rows = [{"id": "j1", "groups": ["g"], "metadata": {"x": 1}}, {"id": "j2"}]
    r = await client.post("/v1/devices/import", json=rows)
    assert r.status_code == 200
    assert r.json()["created"] == 2 and r.json()["skipped"] == 0
    assert (await client.get("/v1/devices/j1")).json()["metadata"] == {"x": 1}


async def test_import_checks(client: httpx.AsyncClient, hub: Hub) -> None:
    csv_headers = {"content-type": "text/csv"}
    r = await client.post("/v1/devices/import", content="name\nx\n", headers=csv_headers)
    assert r.status_code == 422 and "header" in r.json()["message"]
    r = await client.post("/v1/devices/import", content="id\nok\nbad id\n", headers=csv_headers)
    assert r.status_code == 422 and r.json()["error"] == "invalid_id"
    assert await hub.devices.list() == []  # nothing written when a row is bad
    for garbled in ["\rid\u00aa\u00cf^", "id\n" + "x" * 200_000]:
        r = await client.post("/v1/devices/import", content=garbled, headers=csv_headers)
        assert r.status_code == 422, r.text[:100]
    r = await client.post("/v1/devices/import", json={"id": "x"})
    assert r.status_code == 422 and "JSON list" in r.json()["message"]
    r = await client.post("/v1/devices/import", json=[{"id": "x", "bogus": 1}])
    assert r.status_code == 422 and "device #0" in r.json()["message"]
