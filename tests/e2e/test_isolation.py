"""Isolation probes: a device may only touch its own ``devices/{d}/`` (DESIGN.md).

Each probe asserts the refusal on the wire AND that nothing crossed over: the
victim's messages do not reach the prober, and the prober's publishes do not
reach the victim's data.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from e2e.helpers import all_outcomes, wait_for
from e2e.paho_device import PahoDevice

NOT_AUTHORIZED = 0x87  # paho reports the 3.1.1 return code 5 as this reason code too
ADMINISTRATIVE_ACTION = 0x98


def refused_code(version: int) -> int:
    """SUBACK failure: 0x80 in 3.1.1 (§3.9.3), 0x87 Not authorized in 5.0."""
    return 0x80 if version == 4 else NOT_AUTHORIZED


@pytest.fixture
def pair(
    register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> tuple[PahoDevice, PahoDevice]:
    """(probe, victim), both connected; the victim subscribed to all its own topics."""
    probe = devices("probe", register("probe", ["shared"]))
    victim = devices("victim", register("victim", ["shared"]))
    assert probe.connect() == 0
    assert victim.connect() == 0
    assert victim.subscribe("devices/victim/#") == [1]
    return probe, victim


def send_to_victim(api: httpx.Client) -> None:
    assert api.post("/v1/devices/victim/commands/open", content=b"secret").status_code == 202
    assert api.post("/v1/devices/victim/notifications/n", content=b"private").status_code == 202


FOREIGN_FILTERS = [
    "devices/victim/commands/#",
    "devices/victim/#",
    "devices/victim/notifications/+",
    "#",
    "+",
    "+/victim/#",
    "devices/+/commands/#",
    "devices/+/#",
    "devices/#",
    "$SYS/#",
]


def test_subscribing_outside_its_own_space_is_refused(
    api: httpx.Client, pair: tuple[PahoDevice, PahoDevice]
) -> None:
    probe, victim = pair
    for topic_filter in FOREIGN_FILTERS:
        codes = probe.subscribe(topic_filter)
        assert codes == [refused_code(probe.version)], f"{topic_filter!r} was granted: {codes}"
    assert not probe.disconnected.is_set()  # a refused filter is not a reason to close
    send_to_victim(api)
    assert {victim.expect().payload, victim.expect().payload} == {b"secret", b"private"}
    probe.expect_none(1.0)


def test_one_subscribe_mixing_own_and_foreign_filters(
    api: httpx.Client, pair: tuple[PahoDevice, PahoDevice]
) -> None:
    probe, victim = pair
    probe.client.subscribe([("devices/probe/notifications/#", 1), ("devices/victim/#", 1)])
    assert probe.subacks.get(timeout=10) == [1, refused_code(probe.version)]
    send_to_victim(api)
    assert api.post("/v1/devices/probe/notifications/mine", content=b"ok").status_code == 202
    msg = probe.expect()
    assert (msg.topic, msg.payload) == ("devices/probe/notifications/mine", b"ok")
    probe.expect_none(1.0)


@pytest.mark.parametrize("kind", ["telemetry", "telemetry/x", "responses/c1/200"])
def test_publishing_into_another_device_closes_the_connection(
    api: httpx.Client, pair: tuple[PahoDevice, PahoDevice], kind: str
) -> None:
    probe, victim = pair
    cmd = api.post("/v1/devices/victim/commands/open", content=b"")
    cid = cmd.json()["id"]
    topic = f"devices/victim/{kind}".replace("c1", cid)
    probe.client.publish(topic, b"forged", qos=1)
    assert probe.disconnected.wait(10), "the node kept the connection open"
    if probe.version == 5:
        assert probe.disconnect_reason == NOT_AUTHORIZED
    # nothing forged reached the victim's telemetry or its command
    assert api.get("/v1/telemetry", params={"group": "audit"}).json()["records"] == []
    assert not [o for o in all_outcomes(api) if o["kind"] == "response"]
    assert victim.expect().topic == f"devices/victim/commands/open/{cid}"


def test_publishing_to_a_topic_outside_the_contract_closes_the_connection(
    api: httpx.Client, pair: tuple[PahoDevice, PahoDevice]
) -> None:
    probe, _ = pair
    probe.client.publish("devices/probe/commands/x/y", b"loop", qos=1)
    assert probe.disconnected.wait(10)
    if probe.version == 5:
        assert probe.disconnect_reason == NOT_AUTHORIZED


@pytest.mark.parametrize(
    "client_id, username, which_key",
    [
        ("victim", "victim", "probe"),  # wrong key
        ("nobody", "nobody", "probe"),  # unknown device
        ("probe", "victim", "victim"),  # someone else's credentials under my client id
        ("victim", "probe", "probe"),  # my credentials under someone else's client id
        ("probe", "probe", None),  # no password
    ],
)
def test_bad_credentials_get_connack_not_authorized(
    register: Callable[..., str],
    devices: Callable[..., PahoDevice],
    client_id: str,
    username: str,
    which_key: str | None,
) -> None:
    keys = {"probe": register("probe"), "victim": register("victim")}
    victim = devices("victim", keys["victim"])
    assert victim.connect() == 0
    key = keys[which_key] if which_key else None
    intruder = devices(client_id, key, username=username)
    if key is None:
        intruder.client.username_pw_set(username, None)
    assert intruder.connect() == NOT_AUTHORIZED
    assert intruder.disconnected.wait(10)
    # the legitimate victim was not taken over
    assert not victim.disconnected.wait(0.5)


def test_disabled_device_is_refused_and_a_connected_one_is_closed(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("rogue-1")
    dev = devices("rogue-1", key)
    assert dev.connect() == 0
    r = api.patch("/v1/devices/rogue-1", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert dev.disconnected.wait(10), "a disabled device stayed connected"
    if dev.version == 5:
        assert dev.disconnect_reason == ADMINISTRATIVE_ACTION
    again = devices("rogue-1", key)
    assert again.connect() == NOT_AUTHORIZED
    assert api.patch("/v1/devices/rogue-1", json={"enabled": True}).status_code == 200
    third = devices("rogue-1", key)
    assert third.connect() == 0


def test_removed_device_is_closed_and_refused(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("rogue-2")
    dev = devices("rogue-2", key)
    assert dev.connect() == 0
    assert api.delete("/v1/devices/rogue-2").status_code == 204
    assert dev.disconnected.wait(10)
    assert devices("rogue-2", key).connect() == NOT_AUTHORIZED


def test_rotated_key_stops_the_old_one(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    old = register("rogue-3")
    r = api.post("/v1/devices/rogue-3/key")
    assert r.status_code == 200, r.text
    assert devices("rogue-3", old).connect() == NOT_AUTHORIZED
    assert devices("rogue-3", r.json()["key"]).connect() == 0
    wait_for(lambda: api.get("/v1/devices/rogue-3").json()["connected"], what="presence")


def test_a_device_cannot_answer_another_devices_command(
    api: httpx.Client, pair: tuple[PahoDevice, PahoDevice]
) -> None:
    """The response topic is the device's own, so the ACL lets it through; the command id
    it names belongs to the victim. The sender must get the victim's answer, not the
    prober's (a leaked or guessed command id must not let one device answer for another)."""
    probe, victim = pair
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["r"] = api.post("/v1/devices/victim/commands/unlock?wait=10", content=b"")

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    cid = victim.expect().topic.rsplit("/", 1)[1]
    suffix = "" if probe.version == 5 else "/200"
    probe.publish(f"devices/probe/responses/{cid}{suffix}", b"forged: unlocked")
    time.sleep(0.3)
    victim.publish(f"devices/victim/responses/{cid}{suffix}", b"genuine: refused")
    sender.join(15)
    body = result["r"].json()
    assert base64.b64decode(body["payload"]) == b"genuine: refused", body
    forged = [o for o in all_outcomes(api) if o["kind"] == "response" and o["device"] == "probe"]
    assert forged == [], "a response to another device's command was recorded"
