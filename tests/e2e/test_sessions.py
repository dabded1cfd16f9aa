"""MQTT sessions: takeover, persistence, keepalive and the CONNECT deadline.

DESIGN.md: the later connection of one device id wins and the earlier one is
closed within seconds; persistent sessions (3.1.1 clean session 0, 5.0 session
expiry > 0) keep subscriptions; keepalive is enforced at 1.5x; CONNECT must
arrive within ``connect_timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from conformance.rawmqtt import DISCONNECT, PINGREQ_BYTES, PINGRESP, RawClient, parse_disconnect
from e2e.helpers import device_info, wait_for
from e2e.paho_device import PahoDevice
from roost.testing.thread import NodeThread

SESSION_TAKEN_OVER = 0x8E
KEEP_ALIVE_TIMEOUT = 0x8D


def persistent(devices: Callable[..., PahoDevice], device_id: str, key: str) -> PahoDevice:
    return devices(device_id, key, clean=False, session_expiry=300)


def test_second_connection_takes_over_the_first(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("twin-1")
    first = devices("twin-1", key)
    assert first.connect() == 0
    second = devices("twin-1", key)
    assert second.connect() == 0
    assert first.disconnected.wait(10), "the earlier connection was not closed"
    if first.version == 5:
        assert first.disconnect_reason == SESSION_TAKEN_OVER
    # the winner is fully in charge
    assert second.subscribe("devices/twin-1/notifications/#") == [1]
    r = api.post("/v1/devices/twin-1/notifications/hi", content=b"to the winner")
    assert r.status_code == 202
    assert second.expect().payload == b"to the winner"
    assert not second.disconnected.is_set()
    assert device_info(api, "twin-1")["connected"] is True


def test_persistent_session_keeps_subscriptions(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("sleepy-1")
    dev = persistent(devices, "sleepy-1", key)
    assert dev.connect() == 0
    assert dev.session_present is False
    assert dev.subscribe("devices/sleepy-1/commands/#") == [1]
    dev.close()
    wait_for(lambda: not device_info(api, "sleepy-1")["connected"], what="the disconnect")
    r = api.post("/v1/devices/sleepy-1/commands/wake", content=b"up")
    assert r.status_code == 202
    back = persistent(devices, "sleepy-1", key)
    assert back.connect() == 0
    assert back.session_present is True
    msg = back.expect()  # no SUBSCRIBE this time
    assert (msg.topic, msg.payload) == (f"devices/sleepy-1/commands/wake/{r.json()['id']}", b"up")


def test_clean_session_forgets_subscriptions_but_not_the_mailbox(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("sleepy-2")
    dev = persistent(devices, "sleepy-2", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/sleepy-2/commands/#") == [1]
    dev.close()
    wait_for(lambda: not device_info(api, "sleepy-2")["connected"], what="the disconnect")
    assert api.post("/v1/devices/sleepy-2/commands/wake", content=b"up").status_code == 202
    clean = devices("sleepy-2", key, clean=True)
    assert clean.connect() == 0
    assert clean.session_present is False
    clean.expect_none(1.0)
    assert clean.subscribe("devices/sleepy-2/commands/#") == [1]
    assert clean.expect().payload == b"up"
    clean.close()
    # and the clean session ended the stored one for good
    again = persistent(devices, "sleepy-2", key)
    assert again.connect() == 0
    assert again.session_present is False


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_session_expiry_zero_ends_with_the_connection(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("sleepy-3")
    dev = devices("sleepy-3", key, clean=False)  # no Session Expiry Interval: 0
    assert dev.connect() == 0
    assert dev.subscribe("devices/sleepy-3/commands/#") == [1]
    dev.close()
    wait_for(lambda: not device_info(api, "sleepy-3")["connected"], what="the disconnect")
    back = devices("sleepy-3", key, clean=False)
    assert back.connect() == 0
    assert back.session_present is False


def test_silent_client_is_closed_after_keepalive(
    node: NodeThread, register: Callable[..., str], version: int
) -> None:
    key = register("mute-1")
    with RawClient(node.mqtt_port, version) as raw:
        assert raw.handshake("mute-1", key, keepalive=1).code == 0
        started = time.monotonic()
        before_close = raw.wait_closed(10)
        assert time.monotonic() - started >= 1.0, "closed before the keep alive ran out"
        if version == 5:
            assert [(p.type, parse_disconnect(p)) for p in before_close] == [
                (DISCONNECT, KEEP_ALIVE_TIMEOUT)]


def test_pinging_client_stays_connected(
    node: NodeThread, register: Callable[..., str], version: int
) -> None:
    key = register("mute-2")
    with RawClient(node.mqtt_port, version) as raw:
        assert raw.handshake("mute-2", key, keepalive=1).code == 0
        for _ in range(6):  # 3 s, twice 1.5 x keep alive
            raw.send(PINGREQ_BYTES)
            assert raw.read(5).type == PINGRESP
            time.sleep(0.5)


@pytest.mark.node(connect_timeout=1.0)
@pytest.mark.parametrize("sent", [b"", b"\x10\x20\x00\x04MQ"], ids=["nothing", "half-connect"])
def test_connection_without_connect_is_closed_after_connect_timeout(
    node: NodeThread, sent: bytes
) -> None:
    with RawClient(node.mqtt_port) as raw:
        raw.send(sent)
        assert raw.wait_closed(10) == []
