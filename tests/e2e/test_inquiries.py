"""Inquiries end to end: the device asks, a service answers once or streams replies.

DESIGN.md: replies arrive on ``devices/{d}/replies/{name}/{rid}``; the end of a
continuous inquiry is a reply with user property ``end=1`` (MQTT 5) or an empty
message on ``.../{rid}/end`` (MQTT 3.1.1); a device ends one by publishing
``.../{rid}/cancel``. Replies go through the mailbox, so they survive a reconnect.
A taken inquiry that is not answered comes back after its lease.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from e2e.helpers import publish_props, user_properties
from e2e.paho_device import PahoDevice


def asking(devices: Callable[..., PahoDevice], device_id: str, key: str) -> PahoDevice:
    dev = devices(device_id, key)
    assert dev.connect() == 0
    assert dev.subscribe(f"devices/{device_id}/replies/#") == [1]
    return dev


def take_one(api: httpx.Client, wait: float = 5) -> dict[str, Any]:
    r = api.get("/v1/inquiries", params={"wait": wait})
    assert r.status_code == 200, r.text
    inquiries = r.json()["inquiries"]
    assert len(inquiries) == 1, inquiries
    return dict(inquiries[0])


def expect_end(dev: PahoDevice, topic: str) -> mqtt.MQTTMessage:
    msg = dev.expect()
    assert msg.payload == b""
    if dev.version == 5:
        assert msg.topic == topic
        assert user_properties(msg).get("end") == "1"
    else:
        assert msg.topic == topic + "/end"
    return msg


def test_inquiry_answered_once(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("car-1")
    dev = asking(devices, "car-1", key)
    dev.publish("devices/car-1/inquiries/weather/r1", b'{"city":"Oslo"}')
    inquiry = take_one(api)
    assert (inquiry["device"], inquiry["name"], inquiry["rid"]) == ("car-1", "weather", "r1")
    assert base64.b64decode(inquiry["payload"]) == b'{"city":"Oslo"}'
    r = api.post(f"/v1/inquiries/{inquiry['id']}/replies?end=true", content=b"sunny")
    assert r.status_code == 202, r.text
    msg = dev.expect()
    assert (msg.topic, msg.payload) == ("devices/car-1/replies/weather/r1", b"sunny")
    if dev.version == 5:
        assert user_properties(msg).get("end") != "1"  # the body, then the end marker
    expect_end(dev, "devices/car-1/replies/weather/r1")
    late = api.post(f"/v1/inquiries/{inquiry['id']}/replies", content=b"again")
    assert late.status_code == 409 and late.json()["error"] == "inquiry_ended"
    dev.expect_none(0.5)


def test_continuous_inquiry_streams_until_the_device_cancels(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("car-2")
    dev = asking(devices, "car-2", key)
    dev.publish("devices/car-2/inquiries/traffic/route-66", b"E18")
    iid = take_one(api)["id"]
    for i in range(3):
        r = api.post(f"/v1/inquiries/{iid}/replies", content=f"jam {i}".encode())
        assert r.status_code == 202, r.text
    got = [dev.expect() for _ in range(3)]
    assert [(m.topic, m.payload) for m in got] == [
        ("devices/car-2/replies/traffic/route-66", f"jam {i}".encode()) for i in range(3)
    ]
    dev.publish("devices/car-2/inquiries/traffic/route-66/cancel")  # PUBACK: cancel is stored
    r = api.post(f"/v1/inquiries/{iid}/replies", content=b"jam 3")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "inquiry_ended"
    dev.expect_none(0.5)


def test_continuous_inquiry_ended_by_the_service(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("car-3")
    dev = asking(devices, "car-3", key)
    dev.publish("devices/car-3/inquiries/alerts/a1", b"")
    iid = take_one(api)["id"]
    assert api.post(f"/v1/inquiries/{iid}/replies", content=b"one").status_code == 202
    assert api.post(f"/v1/inquiries/{iid}/replies?end=true", content=b"").status_code == 202
    assert dev.expect().payload == b"one"
    expect_end(dev, "devices/car-3/replies/alerts/a1")
    dev.expect_none(0.5)


def test_reply_waits_in_the_mailbox_across_a_reconnect(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("car-4")
    dev = asking(devices, "car-4", key)
    dev.publish("devices/car-4/inquiries/parking/p9", b"near")
    iid = take_one(api)["id"]
    dev.close()
    assert api.post(f"/v1/inquiries/{iid}/replies?end=true", content=b"lot B").status_code == 202
    back = asking(devices, "car-4", key)
    msg = back.expect()
    assert (msg.topic, msg.payload) == ("devices/car-4/replies/parking/p9", b"lot B")
    expect_end(back, "devices/car-4/replies/parking/p9")


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_content_types_and_expiry_travel_both_ways(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """The device's Content Type reaches the service; the reply's Content-Type reaches the
    device, with Message Expiry Interval = the remaining TTL (DESIGN.md, MQTT 5 extras)."""
    key = register("car-6")
    dev = asking(devices, "car-6", key)
    dev.publish("devices/car-6/inquiries/eta/e1", b'{"to":"home"}',
                properties=publish_props(ContentType="application/json",
                                         MessageExpiryInterval=60))
    inquiry = take_one(api)
    assert inquiry["content_type"] == "application/json"
    assert inquiry["expires_at"] - inquiry["created_at"] == pytest.approx(60, abs=1)
    r = api.post(f"/v1/inquiries/{inquiry['id']}/replies?end=true", content=b"<eta>5</eta>",
                 headers={"Content-Type": "application/xml"})
    assert r.status_code == 202
    msg = dev.expect()
    assert msg.payload == b"<eta>5</eta>"
    assert msg.properties.ContentType == "application/xml"
    assert 1 <= msg.properties.MessageExpiryInterval <= 60
    expect_end(dev, "devices/car-6/replies/eta/e1")


@pytest.mark.node(inquiry_lease=1.0)
def test_unanswered_inquiry_comes_back_after_its_lease(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("car-5")
    dev = asking(devices, "car-5", key)
    dev.publish("devices/car-5/inquiries/route/q1", b"to-airport")
    first = take_one(api)
    assert api.get("/v1/inquiries").json()["inquiries"] == []  # leased, not lost
    time.sleep(1.2)
    second = take_one(api, wait=5)
    assert second["id"] == first["id"]
    assert base64.b64decode(second["payload"]) == b"to-airport"
    r = api.post(f"/v1/inquiries/{second['id']}/replies?end=true", content=b"A4")
    assert r.status_code == 202
    assert dev.expect().payload == b"A4"
