"""The connection state machine (MQTT 5.0 §3.1–§3.15, §4.3, §4.9)."""

from __future__ import annotations

import pytest

from roost.errors import (
    MalformedPacket,
    PacketTooLarge,
    PayloadTooLarge,
    ProtocolError,
    ReceiveMaximumExceeded,
    RetainNotSupported,
    UnsupportedVersion,
)
from roost.proto.mqtt import (
    Auth,
    Connect,
    ConnState,
    Disconnect,
    MqttConnection,
    Pingreq,
    Properties,
    Puback,
    Publish,
    Pubrel,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
    encode_pubacks,
    encode_publish,
)

from .wire_helpers import h


def connected(
    version: int = 5,
    *,
    receive_maximum: int = 100,
    accept: Properties | None = None,
    **connect: object,
) -> MqttConnection:
    conn = MqttConnection(receive_maximum=receive_maximum)
    conn.receive_data(Connect(client_id="dev", version=version, **connect).serialize())  # type: ignore[arg-type]
    conn.accept(False, accept)
    conn.data_to_send()
    return conn


def publish(topic: str, qos: int, packet_id: int | None, version: int, **kw: object) -> bytes:
    return encode_publish(topic, b"x", qos, packet_id, version, **kw)  # type: ignore[arg-type]


# --- connect / accept / refuse ---------------------------------------------


def test_accept_v5_sends_connack_with_the_server_limits() -> None:
    conn = MqttConnection()
    packets = conn.receive_data(Connect(client_id="dev", version=5).serialize())
    assert packets == [Connect(client_id="dev", version=5)]
    assert conn.state is ConnState.CONNECTING and conn.version == 5
    conn.accept(False)
    # Receive Maximum 100, Maximum QoS 1, Retain Available 0, Maximum Packet Size 256 KiB.
    assert conn.data_to_send() == h("20 0f 00 00 0c 21 00 64 24 01 25 00 27 00 04 00 00")
    assert conn.state is ConnState.CONNECTED
    assert conn.data_to_send() == b""


def test_accept_v5_passes_the_caller_properties() -> None:
    conn = MqttConnection(receive_maximum=65535)
    conn.receive_data(Connect(client_id="dev", version=5).serialize())
    conn.accept(
        False, Properties(wildcard_subscription_available=0, shared_subscription_available=0)
    )
    assert conn.data_to_send() == h("20 10 00 00 0d 24 01 25 00 27 00 04 00 00 28 00 2a 00")


def test_accept_311() -> None:
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=4, clean_start=False).serialize())
    conn.accept(True)
    assert conn.data_to_send() == h("20 02 01 00")


def test_session_present_with_clean_start_is_a_caller_error() -> None:
    # [MQTT-3.2.2-2]
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=4).serialize())
    with pytest.raises(ValueError):
        conn.accept(True)


@pytest.mark.parametrize(
    ("reason", "code"),
    [(0x84, 1), (0x85, 2), (0x88, 3), (0x80, 3), (0x86, 4), (0x87, 5), (0x8A, 5)],
)
def test_refuse_311_maps_the_reason_to_a_return_code(reason: int, code: int) -> None:
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=4).serialize())
    conn.refuse(reason)
    assert conn.data_to_send() == bytes((0x20, 2, 0, code))
    assert conn.state is ConnState.CLOSED
    assert conn.receive_data(h("c0 00")) == []


def test_refuse_v5_sends_the_reason_code() -> None:
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=5).serialize())
    conn.refuse(0x86)
    assert conn.data_to_send() == h("20 03 00 86 00")


def test_refuse_needs_a_failure_code_and_a_pending_connect() -> None:
    conn = connected()
    with pytest.raises(RuntimeError):
        conn.refuse(0x87)
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=5).serialize())
    with pytest.raises(ValueError):
        conn.refuse(0)


def test_unsupported_version_is_answered_with_a_311_connack() -> None:
    # [MQTT-3.1.2-2]: return code 1, in the 3.1.1 layout every client understands.
    conn = MqttConnection()
    with pytest.raises(UnsupportedVersion) as info:
        conn.receive_data(h("10 0d 00 06 'MQIsdp' 03 02 00 3c 00 00"))
    conn.disconnect(info.value.mqtt_reason)
    assert conn.data_to_send() == h("20 02 00 01")
    assert conn.state is ConnState.CLOSED


def test_malformed_connect_is_closed_silently() -> None:
    conn = MqttConnection()
    with pytest.raises(MalformedPacket) as info:
        conn.receive_data(h("10 0c 00 04 'MQTT' 04 03 00 3c 00 00"))
    conn.disconnect(info.value.mqtt_reason)
    assert conn.data_to_send() == b""


def test_first_packet_must_be_connect() -> None:
    # [MQTT-3.1.0-1]
    with pytest.raises(ProtocolError, match="MQTT-3.1.0-1"):
        MqttConnection().receive_data(h("c0 00"))


def test_second_connect_is_a_protocol_error() -> None:
    # [MQTT-3.1.0-2]
    conn = connected()
    with pytest.raises(ProtocolError, match="MQTT-3.1.0-2"):
        conn.receive_data(Connect(client_id="dev", version=5).serialize())


def test_second_connect_before_accept_is_a_protocol_error() -> None:
    wire = Connect(client_id="dev", version=4).serialize()
    with pytest.raises(ProtocolError, match="MQTT-3.1.0-2"):
        MqttConnection().receive_data(wire + wire)


def test_empty_client_id_without_clean_session_is_rejected_in_311() -> None:
    # [MQTT-3.1.3-8]: CONNACK return code 2.
    conn = MqttConnection()
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(Connect(client_id="", version=4, clean_start=False).serialize())
    assert info.value.mqtt_reason == 0x85
    conn.disconnect(info.value.mqtt_reason)
    assert conn.data_to_send() == h("20 02 00 02")


def test_will_qos2_is_refused_in_v5() -> None:
    # [MQTT-3.2.2-12]: Roost's Maximum QoS is 1.
    conn = MqttConnection()
    wire = Connect(client_id="d", version=5, will=Will("w", b"", 2)).serialize()
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(wire)
    assert info.value.mqtt_reason == 0x9B
    conn.disconnect(info.value.mqtt_reason)
    assert conn.data_to_send() == h("20 03 00 9b 00")


def test_connect_size_limit_applies_until_accept() -> None:
    conn = MqttConnection(max_packet_size=10_000, connect_max_size=200)
    connect = Connect(client_id="dev", version=4).serialize()
    big = encode_publish("t", bytes(1000), 0, None, 4)
    with pytest.raises(PacketTooLarge):
        conn.receive_data(connect + big)
    conn = MqttConnection(max_packet_size=10_000, connect_max_size=200)
    conn.receive_data(connect)
    conn.accept(False)
    assert conn.receive_data(big) == [Publish("t", bytes(1000))]


def test_replies_before_connack_are_held_until_accept() -> None:
    # [MQTT-3.2.0-1]: CONNACK is the first packet the server sends.
    conn = MqttConnection()
    packets = conn.receive_data(Connect(client_id="dev", version=4).serialize() + h("c0 00"))
    assert packets[1] == Pingreq()
    assert conn.data_to_send() == b""
    conn.accept(False)
    assert conn.data_to_send() == h("20 02 00 00 d0 00")


def test_pingreq_is_answered_and_returned() -> None:
    conn = connected(4)
    assert conn.receive_data(h("c0 00 c0 00")) == [Pingreq(), Pingreq()]
    assert conn.data_to_send() == h("d0 00 d0 00")


# --- outbound QoS 1 -----------------------------------------------------------


def test_packet_ids_are_allocated_in_order_and_tags_returned_on_puback() -> None:
    conn = connected(4)
    assert conn.publish("a", b"1", 1, tag="m1") == 1
    assert conn.publish("a", b"2", 1, tag="m2") == 2
    assert conn.publish("a", b"3", 0) is None
    assert conn.data_to_send() == (
        h("32 06 00 01 'a' 00 01 '1'") + h("32 06 00 01 'a' 00 02 '2'") + h("30 04 00 01 'a' '3'")
    )
    assert conn.inflight_tags() == ["m1", "m2"]
    assert conn.inflight_count == 2
    assert conn.receive_data(h("40 02 00 02")) == [Puback(2)]
    assert conn.take_acked(2) == "m2"
    assert conn.take_acked(2) is None
    assert conn.inflight_tags() == ["m1"]


def test_puback_for_an_unknown_packet_id_is_ignored() -> None:
    conn = connected(4)
    assert conn.receive_data(h("40 02 00 09")) == [Puback(9)]
    assert conn.take_acked(9) is None


def test_packet_ids_wrap_and_skip_ids_in_flight() -> None:
    # [MQTT-2.2.1-3]: non-zero, and not one still in use.
    conn = connected(4)
    assert conn.publish("a", b"", 1, tag="first") == 1  # stays in flight throughout
    for _ in range(65_532):  # ids 2..65533, each acknowledged
        conn.publish("a", b"", 1)
    conn.receive_data(encode_pubacks(range(2, 65_534), 4))
    assert conn.publish("a", b"", 1, tag="b") == 65_534
    assert conn.publish("a", b"", 1, tag="c") == 65_535
    assert conn.publish("a", b"", 1, tag="d") == 2  # wrapped, 0 never used, 1 skipped
    assert conn.inflight_tags() == ["first", "b", "c", "d"]


def test_client_receive_maximum_bounds_outbound_messages() -> None:
    # §4.9: the client's Receive Maximum from its CONNECT.
    conn = connected(5, properties=Properties(receive_maximum=2))
    assert conn.client_receive_maximum == 2
    conn.publish("a", b"", 1)
    assert conn.can_publish()
    conn.publish("a", b"", 1)
    assert not conn.can_publish()
    with pytest.raises(RuntimeError):
        conn.publish("a", b"", 1)
    conn.publish("a", b"", 0)  # QoS 0 is not flow controlled
    conn.receive_data(h("40 02 00 01"))
    assert conn.can_publish()


def test_client_receive_maximum_defaults_to_65535() -> None:
    assert connected(4).client_receive_maximum == 65_535
    assert connected(5).client_receive_maximum == 65_535


def test_publish_over_the_client_maximum_packet_size_is_not_sent() -> None:
    # [MQTT-3.1.2-25]: discarded, and the caller treats it as delivered.
    conn = connected(5, properties=Properties(maximum_packet_size=20))
    with pytest.raises(PayloadTooLarge):
        conn.publish("a", bytes(20), 1, tag="big")
    assert conn.inflight_tags() == []
    assert conn.data_to_send() == b""
    assert conn.publish("a", b"ok", 1) == 1


def test_publish_only_qos_0_and_1_and_only_while_open() -> None:
    conn = connected(5)
    with pytest.raises(ValueError):
        conn.publish("a", b"", 2)
    conn.disconnect(0)
    with pytest.raises(RuntimeError):
        conn.publish("a", b"", 1)


# --- inbound QoS 1 / receive maximum ---------------------------------------


def test_receive_maximum_exceeded_in_v5() -> None:
    # [MQTT-3.3.4-9]
    conn = connected(5, receive_maximum=2)
    conn.receive_data(publish("a", 1, 1, 5) + publish("a", 1, 2, 5))
    with pytest.raises(ReceiveMaximumExceeded):
        conn.receive_data(publish("a", 1, 3, 5))


def test_puback_frees_receive_maximum_room() -> None:
    conn = connected(5, receive_maximum=2)
    conn.receive_data(publish("a", 1, 1, 5) + publish("a", 1, 2, 5))
    conn.puback(1)
    assert conn.data_to_send() == h("40 02 00 01")
    assert len(conn.receive_data(publish("a", 1, 3, 5))) == 1


def test_resent_packet_id_counts_once() -> None:
    conn = connected(5, receive_maximum=1)
    conn.receive_data(publish("a", 1, 1, 5))
    assert len(conn.receive_data(publish("a", 1, 1, 5, dup=True))) == 1


def test_receive_maximum_is_not_enforced_in_311() -> None:
    conn = connected(4, receive_maximum=1)
    assert len(conn.receive_data(publish("a", 1, 1, 4) + publish("a", 1, 2, 4))) == 2


def test_pubacks_in_one_append() -> None:
    conn = connected(5, receive_maximum=3)
    conn.receive_data(b"".join(publish("a", 1, i, 5) for i in (1, 2, 3)))
    conn.pubacks([1, 2, 3])
    assert conn.data_to_send() == h("40 02 00 01 40 02 00 02 40 02 00 03")
    conn.receive_data(b"".join(publish("a", 1, i, 5) for i in (4, 5, 6)))


def test_puback_with_a_reason_in_v5() -> None:
    conn = connected(5)
    conn.receive_data(publish("a", 1, 4, 5))
    conn.puback(4, 0x87)
    assert conn.data_to_send() == h("40 03 00 04 87")


# --- QoS 2 ------------------------------------------------------------------


def test_qos2_publish_is_refused_in_v5() -> None:
    # Maximum QoS 1 was advertised (§3.2.2.3.4): DISCONNECT 0x9B.
    conn = connected(5)
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(publish("a", 2, 1, 5))
    assert info.value.mqtt_reason == 0x9B
    conn.disconnect(info.value.mqtt_reason)
    assert conn.data_to_send() == h("e0 01 9b")


def test_qos2_handshake_in_311_delivers_once() -> None:
    # 3.1.1 §4.3.3, method B.
    conn = connected(4)
    first = publish("a", 2, 5, 4)
    assert conn.receive_data(first) == [Publish("a", b"x", 2, packet_id=5)]
    assert conn.receive_data(publish("a", 2, 5, 4, dup=True)) == []  # not delivered twice
    assert conn.data_to_send() == b""
    conn.puback(5)
    assert conn.data_to_send() == h("50 02 00 05")  # PUBREC
    assert conn.receive_data(publish("a", 2, 5, 4, dup=True)) == []
    assert conn.data_to_send() == h("50 02 00 05")  # PUBREC again
    assert conn.receive_data(h("62 02 00 05")) == [Pubrel(5)]
    assert conn.data_to_send() == h("70 02 00 05")  # PUBCOMP
    assert conn.receive_data(first) == [Publish("a", b"x", 2, packet_id=5)]  # a new message


def test_pubrel_for_an_unknown_id_in_v5() -> None:
    conn = connected(5)
    conn.receive_data(h("62 02 00 05"))
    assert conn.data_to_send() == h("70 03 00 05 92")


def test_pubrec_from_the_client_is_a_protocol_error() -> None:
    # Roost never sends QoS 2, so there is nothing to PUBREC.
    with pytest.raises(ProtocolError):
        connected(4).receive_data(h("50 02 00 01"))


# --- v5 checks on PUBLISH ---------------------------------------------------


def test_topic_alias_resolution() -> None:
    # §3.3.2.3.4
    conn = connected(5, accept=Properties(topic_alias_maximum=5))
    alias = Properties(topic_alias=1)
    got = conn.receive_data(
        publish("a/b", 0, None, 5, properties=alias) + publish("", 0, None, 5, properties=alias)
    )
    assert got == [Publish("a/b", b"x"), Publish("a/b", b"x")]
    assert got[1].properties is not alias


@pytest.mark.parametrize(
    ("maximum", "wire"),
    [
        (0, publish("a", 0, None, 5, properties=Properties(topic_alias=1))),  # none advertised
        (5, publish("a", 0, None, 5, properties=Properties(topic_alias=6))),  # [MQTT-3.3.2-9]
        (5, publish("", 0, None, 5, properties=Properties(topic_alias=2))),  # unknown alias
    ],
)
def test_bad_topic_alias(maximum: int, wire: bytes) -> None:
    conn = connected(5, accept=Properties(topic_alias_maximum=maximum))
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(wire)
    assert info.value.mqtt_reason == 0x94


def test_retain_when_not_available_in_v5() -> None:
    with pytest.raises(RetainNotSupported) as info:
        connected(5).receive_data(publish("a", 0, None, 5, retain=True))
    assert info.value.mqtt_reason == 0x9A
    conn = connected(5, accept=Properties(retain_available=1))
    assert conn.receive_data(publish("a", 0, None, 5, retain=True))[0].retain  # type: ignore[union-attr]
    assert connected(4).receive_data(publish("a", 0, None, 4, retain=True))


def test_subscription_identifier_from_a_client_is_a_protocol_error() -> None:
    # [MQTT-3.3.4-6]
    wire = publish("a", 0, None, 5, properties=Properties(subscription_identifiers=(1,)))
    with pytest.raises(ProtocolError, match="MQTT-3.3.4-6"):
        connected(5).receive_data(wire)


# --- subscribe / unsubscribe ------------------------------------------------


def test_subscribe_and_suback() -> None:
    conn = connected(4)
    packet = Subscribe(3, (Subscription("a/#", 1), Subscription("b", 2)))
    assert conn.receive_data(packet.serialize(4)) == [packet]
    conn.suback(3, [1, 0x8F])
    assert conn.data_to_send() == h("90 04 00 03 01 80")


def test_unsubscribe_and_unsuback() -> None:
    conn = connected(5)
    packet = Unsubscribe(4, ("a/#",))
    assert conn.receive_data(packet.serialize(5)) == [packet]
    conn.unsuback(4, [0x11])
    assert conn.data_to_send() == h("b0 04 00 04 00 11")
    conn = connected(4)
    conn.unsuback(4, [0])
    assert conn.data_to_send() == h("b0 02 00 04")


@pytest.mark.parametrize(
    ("advertised", "packet", "reason"),
    [
        (Properties(wildcard_subscription_available=0), Subscribe(1, (Subscription("a/+"),)), 0xA2),
        (
            Properties(shared_subscription_available=0),
            Subscribe(1, (Subscription("$share/g/a"),)),
            0x9E,
        ),
        (
            Properties(subscription_identifier_available=0),
            Subscribe(1, (Subscription("a"),), Properties(subscription_identifiers=(1,))),
            0xA1,
        ),
    ],
)
def test_subscribe_to_a_feature_not_advertised(
    advertised: Properties, packet: Subscribe, reason: int
) -> None:
    conn = connected(5, accept=advertised)
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(packet.serialize(5))
    assert info.value.mqtt_reason == reason


# --- disconnect / auth ------------------------------------------------------


def test_client_disconnect_closes_and_ignores_the_rest() -> None:
    conn = connected(5)
    assert conn.receive_data(h("e0 01 04 c0 00")) == [Disconnect(0x04)]
    assert conn.state is ConnState.CLOSED
    assert conn.receive_data(h("c0 00")) == []
    assert conn.data_to_send() == b""


def test_session_expiry_at_disconnect_needs_one_at_connect() -> None:
    # [MQTT-3.14.2-2]
    wire = Disconnect(0, Properties(session_expiry_interval=10)).serialize(5)
    with pytest.raises(ProtocolError, match="MQTT-3.14.2-2"):
        connected(5).receive_data(wire)
    conn = connected(5, properties=Properties(session_expiry_interval=60))
    assert conn.receive_data(wire) == [Disconnect(0, Properties(session_expiry_interval=10))]


def test_server_disconnect() -> None:
    conn = connected(5)
    conn.disconnect(0x8B)
    assert conn.data_to_send() == h("e0 01 8b")
    conn.disconnect(0x8B)  # idempotent
    assert conn.data_to_send() == b""
    conn = connected(5)
    conn.disconnect(0x86)  # not a DISCONNECT reason (§3.14.2.1): unspecified error
    assert conn.data_to_send() == h("e0 01 80")
    conn = connected(4)
    conn.disconnect(0x8B)  # 3.1.1: the server just closes
    assert conn.data_to_send() == b""
    assert conn.state is ConnState.CLOSED


def test_disconnect_before_accept_refuses_the_connect() -> None:
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="dev", version=5).serialize())
    conn.disconnect(0x87)
    assert conn.data_to_send() == h("20 03 00 87 00")
    assert conn.state is ConnState.CLOSED


def test_auth_needs_an_authentication_method_at_connect() -> None:
    with pytest.raises(ProtocolError, match="authentication method"):
        connected(5).receive_data(Auth(0x19).serialize(5))
    conn = connected(5, properties=Properties(authentication_method="SCRAM"))
    assert conn.receive_data(Auth(0x19).serialize(5)) == [Auth(0x19)]
    conn.send(Auth(0x18))
    assert conn.data_to_send() == h("f0 02 18 00")
