"""Wire constants (MQTT 5.0 §2.1.2, §2.2.2.2, §2.4) and the 3.1.1 CONNACK mapping."""

from __future__ import annotations

import pytest

from roost.proto.mqtt import PacketType, PropertyId, ProtocolVersion, ReasonCode, connack_code_v311


def test_packet_types_are_numbered_as_in_the_spec() -> None:
    assert [t.value for t in PacketType] == list(range(1, 16))
    assert PacketType.PUBLISH == 3 and PacketType.AUTH == 15


def test_protocol_levels() -> None:
    assert ProtocolVersion.V311 == 4
    assert ProtocolVersion.V5 == 5


def test_reason_codes_share_zero_as_in_the_spec() -> None:
    assert ReasonCode.SUCCESS == ReasonCode.NORMAL_DISCONNECTION == ReasonCode.GRANTED_QOS_0 == 0
    assert ReasonCode.UNSPECIFIED_ERROR == 0x80
    assert ReasonCode.NO_MATCHING_SUBSCRIBERS == 0x10
    assert ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED == 0xA2
    assert ReasonCode.DISCONNECT_WITH_WILL == 0x04


def test_property_identifiers() -> None:
    assert len(PropertyId) == 27
    assert PropertyId.USER_PROPERTY == 0x26
    assert PropertyId.SHARED_SUBSCRIPTION_AVAILABLE == 0x2A


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (0x00, 0),
        (0x84, 1),  # unsupported protocol version -> unacceptable protocol version
        (0x85, 2),  # client identifier not valid -> identifier rejected
        (0x88, 3),  # server unavailable
        (0x89, 3),  # server busy
        (0x9F, 3),  # connection rate exceeded
        (0x80, 3),  # unspecified: 3.1.1 has no generic code
        (0x86, 4),  # bad user name or password
        (0x8C, 4),  # bad authentication method
        (0x87, 5),  # not authorized
        (0x8A, 5),  # banned
    ],
)
def test_connack_code_v311_maps_mqtt5_reasons(reason: int, code: int) -> None:
    # 3.1.1 §3.2.2.3 Table 3.1
    assert connack_code_v311(reason) == code
