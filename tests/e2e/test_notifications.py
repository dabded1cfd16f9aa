"""Notifications end to end: to one device, to a group, to all (DESIGN.md).

Group and broadcast notifications are stored once and fanned out on read: each
member reads the group log after its own cursor, which starts where the log
was when the device joined. So members that connect later still get them, a
device registered after the send does not, non-members never do.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from e2e.helpers import all_outcomes, mailbox, outcomes_for, user_properties
from e2e.paho_device import PahoDevice

SUB = "devices/{}/notifications/#"


def online(devices: Callable[..., PahoDevice], device_id: str, key: str) -> PahoDevice:
    dev = devices(device_id, key)
    assert dev.connect() == 0
    assert dev.subscribe(SUB.format(device_id)) == [1]
    return dev


def test_device_notification_with_a_multi_level_topic(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("lamp-7")
    dev = online(devices, "lamp-7", key)
    r = api.post(
        "/v1/devices/lamp-7/notifications/alerts/fire/floor-3?ttl=60",
        content=b"evacuate",
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 202, r.text
    msg = dev.expect()
    assert msg.topic == "devices/lamp-7/notifications/alerts/fire/floor-3"
    assert msg.payload == b"evacuate"
    if dev.version == 5:
        assert msg.properties.ContentType == "text/plain"
        assert 1 <= msg.properties.MessageExpiryInterval <= 60
        assert "group" not in user_properties(msg)


def test_group_notification_fans_out_to_members_only(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    keys = {
        "van-1": register("van-1", ["fleet-north"]),
        "van-2": register("van-2", ["fleet-north", "refrigerated"]),
        "van-3": register("van-3", ["fleet-south"]),
    }
    early = online(devices, "van-1", keys["van-1"])
    outsider = online(devices, "van-3", keys["van-3"])
    r = api.post("/v1/groups/fleet-north/notifications/route/update?ttl=600", content=b"A7")
    assert r.status_code == 202, r.text
    # registered after the send: the message predates its membership
    late_key = register("van-4", ["fleet-north"])

    msg = early.expect()
    assert (msg.topic, msg.payload) == ("devices/van-1/notifications/route/update", b"A7")
    if early.version == 5:
        assert user_properties(msg).get("group") == "fleet-north"

    # a member connecting later gets it too, from the one stored copy
    assert [m["group"] for m in mailbox(api, "van-2")] == ["fleet-north"]
    later = online(devices, "van-2", keys["van-2"])
    msg = later.expect()
    assert (msg.topic, msg.payload) == ("devices/van-2/notifications/route/update", b"A7")
    if later.version == 5:
        assert user_properties(msg).get("group") == "fleet-north"

    assert mailbox(api, "van-4") == []
    newcomer = online(devices, "van-4", late_key)
    newcomer.expect_none(1.0)
    outsider.expect_none(0.1)
    early.expect_none(0.1)


def test_group_notification_is_read_once_per_device(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """The member's cursor moves on PUBACK: a reconnect does not bring it again."""
    key = register("van-5", ["fleet-east"])
    r = api.post("/v1/groups/fleet-east/notifications/hello", content=b"once")
    assert r.status_code == 202
    dev = online(devices, "van-5", key)
    assert dev.expect().payload == b"once"
    dev.expect_none(0.5)
    dev.close()
    assert mailbox(api, "van-5") == []
    again = online(devices, "van-5", key)
    again.expect_none(1.0)


def test_broadcast_reaches_every_device_now_and_later(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    k1, k2 = register("pole-1", ["city"]), register("pole-2")
    now = online(devices, "pole-1", k1)
    r = api.post("/v1/broadcast/notifications/maintenance?ttl=600", content=b"tonight")
    assert r.status_code == 202, r.text
    msg = now.expect()
    assert (msg.topic, msg.payload) == ("devices/pole-1/notifications/maintenance", b"tonight")
    later = online(devices, "pole-2", k2)
    msg = later.expect()
    assert (msg.topic, msg.payload) == ("devices/pole-2/notifications/maintenance", b"tonight")
    now.expect_none(0.3)


def test_joining_a_group_while_connected(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """PATCH groups on a connected device: later group messages arrive live; the ones
    sent before it joined do not."""
    key = register("van-6")
    dev = online(devices, "van-6", key)
    before = api.post("/v1/groups/night-shift/notifications/old", content=b"before")
    assert before.status_code == 202
    r = api.patch("/v1/devices/van-6", json={"groups": ["night-shift"]})
    assert r.status_code == 200 and r.json()["groups"] == ["night-shift"]
    assert api.post("/v1/groups/night-shift/notifications/new", content=b"after").status_code == 202
    msg = dev.expect()
    assert (msg.topic, msg.payload) == ("devices/van-6/notifications/new", b"after")
    dev.expect_none(0.5)


def test_group_notification_expiry_is_reported_once(
    api: httpx.Client, register: Callable[..., str]
) -> None:
    """DESIGN.md: an expired message gets its ``expired`` outcome within 15 s, whether or
    not any device connects; a group message is one message, so one outcome."""
    register("van-7", ["day-shift"])
    register("van-8", ["day-shift"])
    r = api.post("/v1/groups/day-shift/notifications/brief?ttl=1", content=b"x")
    assert r.status_code == 202
    mid = r.json()["id"]
    found = outcomes_for(api, [mid])[mid]
    assert (found["outcome"], found["group"], found["device"]) == ("expired", "day-shift", None)
    assert len([o for o in all_outcomes(api) if o["id"] == mid]) == 1
    assert mailbox(api, "van-7") == []
