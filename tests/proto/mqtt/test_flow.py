"""PUBLISH flow bookkeeping (MQTT 5.0 §4.3, §4.9)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.errors import ReceiveMaximumExceeded
from roost.proto.mqtt import Publish
from roost.proto.mqtt.flow import InboundFlow, OutboundWindow


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=60), st.integers(1, 8))
def test_window_ids_are_unique_non_zero_and_tags_keep_send_order(
    ops: list[tuple[bool, int]], limit: int
) -> None:
    window = OutboundWindow(limit)
    model: dict[int, int] = {}  # packet id -> tag, in send order
    for n, (send, pick) in enumerate(ops):
        if send and window.has_room():
            packet_id = window.next_id()
            assert 0 < packet_id <= 0xFFFF and packet_id not in model  # [MQTT-2.2.1-3]
            window.add(packet_id, n)
            model[packet_id] = n
        elif model:
            packet_id = list(model)[pick % len(model)]
            assert window.ack(packet_id)
            assert window.take_acked(packet_id) == model.pop(packet_id)
        assert window.tags() == list(model.values())
        assert len(window) == len(model) <= limit


def test_window_full_and_unknown_ack() -> None:
    window = OutboundWindow(1)
    window.add(window.next_id(), "t")
    assert not window.has_room()
    with pytest.raises(RuntimeError):
        window.next_id()
    assert not window.ack(99)
    assert window.take_acked(99) is None


def test_window_wraps_past_65535() -> None:
    window = OutboundWindow()
    window.add(65_535, "last")
    assert window.next_id() == 1


def test_inbound_receive_maximum_only_when_enforced() -> None:
    flow = InboundFlow(receive_maximum=1)
    flow.receive(Publish("t", b"", 1, packet_id=1))
    flow.receive(Publish("t", b"", 1, packet_id=2))  # 3.1.1: no flow control
    assert flow.unacked() == 2
    flow = InboundFlow(receive_maximum=1)
    flow.enforce_receive_maximum = True
    flow.receive(Publish("t", b"", 1, packet_id=1))
    with pytest.raises(ReceiveMaximumExceeded):
        flow.receive(Publish("t", b"", 1, packet_id=2))
    assert not flow.ack(1)  # QoS 1: answered with PUBACK
    flow.receive(Publish("t", b"", 1, packet_id=2))


def test_inbound_qos2_is_delivered_once_until_released() -> None:
    flow = InboundFlow(receive_maximum=10)
    flow.max_qos = 2
    packet = Publish("t", b"", 2, packet_id=3)
    assert flow.receive(packet) is packet
    assert flow.receive(packet) is None
    assert not flow.pubrec_sent(3)
    assert flow.ack(3)  # QoS 2: answered with PUBREC
    assert flow.pubrec_sent(3)
    assert flow.release(3)
    assert not flow.release(3)
    assert flow.receive(packet) is packet
