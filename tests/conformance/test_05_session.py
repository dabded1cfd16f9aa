"""05 session: session state, takeover, PINGREQ and DISCONNECT (MQTT 3.1.1 §3.1.2.4,
§3.1.4, §3.12-3.14; 5.0 §3.1.2.4, §3.1.2.11.2, §3.1.4, §3.12-3.14)."""

from __future__ import annotations

import time

import httpx
import pytest

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient
from roost.testing.thread import NodeThread

COMMANDS = "devices/dev/commands/#"


def persistent(version: int) -> dict[str, object]:
    """3.1.1: clean session 0; 5.0: clean start 0 and a session expiry interval."""
    return {"clean": False, "session_expiry": 300 if version == 5 else None}


def wait_disconnected(api: httpx.Client) -> None:
    deadline = time.monotonic() + 10
    while api.get("/v1/devices/dev").json()["connected"] and time.monotonic() < deadline:
        time.sleep(0.05)


def test_pingreq_gets_pingresp_MQTT_3_12_4_1(client: RawClient) -> None:
    """[MQTT-3.12.4-1] the server MUST answer PINGREQ with PINGRESP (d0 00)."""
    for _ in range(3):
        client.send(raw.PINGREQ_BYTES)
        p = client.read()
        assert (p.type, p.flags, p.body) == (raw.PINGRESP, 0, b"")


def test_persistent_session_is_resumed_MQTT_3_2_2_2(
    node: NodeThread, api: httpx.Client, key: str, version: int
) -> None:
    """[MQTT-3.2.2-2] resumed session: session present 1; [MQTT-3.1.2-4] its
    subscriptions still hold, so a message flows without a new SUBSCRIBE."""
    with RawClient(node.mqtt_port, version) as c:
        ack = c.handshake("dev", key, **persistent(version))  # type: ignore[arg-type]
        assert (ack.code, ack.session_present) == (0, False)
        assert c.subscribe([(COMMANDS, 1)]) == [1]
        c.send(raw.DISCONNECT_BYTES)
        c.wait_closed()
    wait_disconnected(api)
    r = api.post("/v1/devices/dev/commands/go", content=b"resumed")
    assert r.status_code == 202
    with RawClient(node.mqtt_port, version) as c:
        ack = c.handshake("dev", key, **persistent(version))  # type: ignore[arg-type]
        assert (ack.code, ack.session_present) == (0, True)
        msg = c.expect_publish()
        assert (msg.topic, msg.payload) == (f"devices/dev/commands/go/{r.json()['id']}",
                                            b"resumed")


def test_clean_start_discards_the_session_MQTT_3_1_2_6(
    node: NodeThread, api: httpx.Client, key: str, version: int
) -> None:
    """3.1.1 [MQTT-3.1.2-6] / 5.0 [MQTT-3.1.2-4]: clean start discards any existing
    session; [MQTT-3.2.2-1] session present 0."""
    with RawClient(node.mqtt_port, version) as c:
        assert c.handshake("dev", key, **persistent(version)).code == 0  # type: ignore[arg-type]
        assert c.subscribe([(COMMANDS, 1)]) == [1]
        c.send(raw.DISCONNECT_BYTES)
        c.wait_closed()
    wait_disconnected(api)
    assert api.post("/v1/devices/dev/commands/go", content=b"later").status_code == 202
    with RawClient(node.mqtt_port, version) as c:
        ack = c.handshake("dev", key, clean=True)
        assert (ack.code, ack.session_present) == (0, False)
        assert c.is_open_after(1.0)  # no subscription, so nothing is delivered


def test_mqtt5_session_expires_after_its_interval_MQTT_3_1_2_23(
    node: NodeThread, api: httpx.Client, key: str
) -> None:
    """5.0 §3.1.2.11.2 [MQTT-3.1.2-23]: the session is kept for Session Expiry Interval
    seconds after the connection closes, then discarded: session present 0."""
    with RawClient(node.mqtt_port, 5) as c:
        assert c.handshake("dev", key, clean=False, session_expiry=1).code == 0
        assert c.subscribe([(COMMANDS, 1)]) == [1]
        c.send(raw.DISCONNECT_BYTES)
        c.wait_closed()
    wait_disconnected(api)
    time.sleep(1.5)
    with RawClient(node.mqtt_port, 5) as c:
        ack = c.handshake("dev", key, clean=False, session_expiry=1)
        assert (ack.code, ack.session_present) == (0, False)


def test_mqtt311_empty_client_id_without_clean_session_MQTT_3_1_3_8(node: NodeThread) -> None:
    """[MQTT-3.1.3-8] zero-length client id with clean session 0: CONNACK 0x02, close."""
    with RawClient(node.mqtt_port, 4) as c:
        c.send(raw.connect("", None, None, clean=False))
        assert c.expect_refused((0x02,)) == 0x02


def test_second_connection_takes_over_MQTT_3_1_4_2(
    node: NodeThread, key: str, version: int
) -> None:
    """[MQTT-3.1.4-2] a CONNECT with a client id already connected: the server closes
    the existing connection (5.0: DISCONNECT 0x8E Session taken over, §3.14.2.1)."""
    with RawClient(node.mqtt_port, version) as old, RawClient(node.mqtt_port, version) as new:
        assert old.handshake("dev", key).code == 0
        assert new.handshake("dev", key).code == 0
        old.expect_disconnect((0x8E,), required=True)
        assert new.ping().type == raw.PINGRESP


def test_client_disconnect_closes_MQTT_3_14_4_1(
    node: NodeThread, api: httpx.Client, client: RawClient
) -> None:
    """[MQTT-3.14.4-1] after DISCONNECT the client sends nothing more and the server
    closes the connection; presence follows."""
    client.send(raw.DISCONNECT_BYTES)
    assert client.wait_closed() == []
    wait_disconnected(api)
    assert api.get("/v1/devices/dev").json()["connected"] is False


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_disconnect_setting_session_expiry_from_zero_MQTT_3_14_2_2(
    client: RawClient,
) -> None:
    """[MQTT-3.14.2-2] Session Expiry was 0 at CONNECT: a non-zero one in DISCONNECT is a
    protocol error; the server MAY answer DISCONNECT 0x82 before closing."""
    client.send(raw.packet(0xE0, b"\x00" + raw.properties(session_expiry_interval=60)))
    client.expect_disconnect((0x82,))


def test_takeover_hands_unacknowledged_messages_to_the_new_connection_MQTT_4_4_0_1(
    node: NodeThread, api: httpx.Client, key: str, version: int
) -> None:
    """A message in flight on the connection that was taken over is not lost: the new
    connection gets it, DUP=1 [MQTT-4.4.0-1]."""
    assert api.post("/v1/devices/dev/notifications/t", content=b"in flight").status_code == 202
    with RawClient(node.mqtt_port, version) as old:
        assert old.handshake("dev", key).code == 0
        assert old.subscribe([("devices/dev/notifications/#", 1)]) == [1]
        assert old.expect_publish().payload == b"in flight"  # and no PUBACK
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if api.get("/v1/devices/dev/mailbox").json()["messages"][0]["attempts"]:
                break
            time.sleep(0.05)
        with RawClient(node.mqtt_port, version) as new:
            assert new.handshake("dev", key).code == 0
            assert new.subscribe([("devices/dev/notifications/#", 1)]) == [1]
            msg = new.expect_publish()
            assert (msg.payload, msg.dup) == (b"in flight", True)
            new.puback(msg.packet_id or 0)
            old.expect_disconnect((0x8E,))


def test_mqtt5_disconnect_can_end_the_session_MQTT_3_14_2_2(
    node: NodeThread, api: httpx.Client, key: str
) -> None:
    """5.0 §3.14.2.2.2: the Session Expiry Interval in DISCONNECT replaces the one from
    CONNECT; 0 ends the session with the connection, so the next clean-start-0 CONNECT
    finds none (session present 0)."""
    with RawClient(node.mqtt_port, 5) as c:
        assert c.handshake("dev", key, clean=False, session_expiry=300).code == 0
        assert c.subscribe([(COMMANDS, 1)]) == [1]
        c.send(raw.packet(0xE0, b"\x00" + raw.properties(session_expiry_interval=0)))
        assert c.wait_closed() == []
    wait_disconnected(api)
    with RawClient(node.mqtt_port, 5) as c:
        ack = c.handshake("dev", key, clean=False, session_expiry=300)
        assert (ack.code, ack.session_present) == (0, False)
