"""Hypothesis strategies for valid MQTT packets of either version.

Built from the spec's rules independently of the codec, so a round trip
through serialize/parse checks both against the same model.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from roost.proto.mqtt import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from roost.proto.mqtt.constants import (
    AUTH_REASONS,
    CONNACK_REASONS,
    DISCONNECT_REASONS,
    PUBACK_REASONS,
    PUBREL_REASONS,
    SUBACK_REASONS,
    UNSUBACK_REASONS,
)
from roost.proto.mqtt.properties import (
    ACK_PROPS,
    AUTH_PROPS,
    CONNACK_PROPS,
    CONNECT_PROPS,
    DISCONNECT_PROPS,
    PUBLISH_PROPS,
    SUBSCRIBE_PROPS,
    UNSUBSCRIBE_PROPS,
    WILL_PROPS,
)

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
topic_names = text.filter(lambda s: s and "+" not in s and "#" not in s)
filters = text.filter(lambda s: not s.startswith("$share/"))
small_binary = st.binary(max_size=16)
packet_ids = st.integers(1, 0xFFFF)

_BYTE = st.integers(0, 1)
_U16 = st.integers(1, 0xFFFF)
_U32 = st.integers(1, 0xFFFF_FFFF)
# Identifier -> (field name, value strategy), §2.2.2.2 Table 2-4.
_VALUES: dict[int, tuple[str, st.SearchStrategy[Any]]] = {
    0x01: ("payload_format_indicator", _BYTE),
    0x02: ("message_expiry_interval", _U32),
    0x03: ("content_type", text),
    0x08: ("response_topic", topic_names),
    0x09: ("correlation_data", small_binary),
    0x0B: (
        "subscription_identifiers",
        st.lists(st.integers(1, 268_435_455), max_size=2).map(tuple),
    ),
    0x11: ("session_expiry_interval", _U32),
    0x12: ("assigned_client_identifier", text),
    0x13: ("server_keep_alive", st.integers(0, 0xFFFF)),
    0x15: ("authentication_method", text),
    0x16: ("authentication_data", small_binary),
    0x17: ("request_problem_information", _BYTE),
    0x18: ("will_delay_interval", _U32),
    0x19: ("request_response_information", _BYTE),
    0x1A: ("response_information", text),
    0x1C: ("server_reference", text),
    0x1F: ("reason_string", text),
    0x21: ("receive_maximum", _U16),
    0x22: ("topic_alias_maximum", st.integers(0, 0xFFFF)),
    0x23: ("topic_alias", _U16),
    0x24: ("maximum_qos", _BYTE),
    0x25: ("retain_available", _BYTE),
    0x26: ("user_properties", st.lists(st.tuples(text, text), max_size=3).map(tuple)),
    0x27: ("maximum_packet_size", _U32),
    0x28: ("wildcard_subscription_available", _BYTE),
    0x29: ("subscription_identifier_available", _BYTE),
    0x2A: ("shared_subscription_available", _BYTE),
}


def properties(allowed: frozenset[int], *, version: int = 5) -> st.SearchStrategy[Properties]:
    """Properties using only the identifiers a packet allows (none in 3.1.1)."""
    if version < 5:
        return st.just(Properties())
    fields = {_VALUES[pid][0]: _VALUES[pid][1] for pid in allowed}
    return st.fixed_dictionaries({}, optional=fields).map(lambda kw: Properties(**kw))


@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    props = draw(properties(CONNECT_PROPS, version=version))
    if props.authentication_data is not None and props.authentication_method is None:
        props = Properties(authentication_method="m", authentication_data=props.authentication_data)
    will = None
    if draw(st.booleans()):
        will = Will(
            draw(topic_names),
            draw(small_binary),
            draw(st.integers(0, 2)),
            draw(st.booleans()),
            draw(properties(WILL_PROPS, version=version)),
        )
    username = draw(st.none() | text)
    password = draw(st.none() | small_binary)
    if version < 5 and username is None:
        password = None  # [MQTT-3.1.2-22]
    return Connect(
        "MQTT",
        version,
        draw(text),
        draw(st.booleans()),
        draw(st.integers(0, 0xFFFF)),
        username,
        password,
        will,
        props,
    )


@st.composite
def publishes(draw: st.DrawFn, version: int) -> Publish:
    qos = draw(st.integers(0, 2))
    props = draw(properties(PUBLISH_PROPS, version=version))
    topic = draw(topic_names)
    if props.topic_alias is not None and draw(st.booleans()):
        topic = ""  # §3.3.2.3.4: the alias stands for the topic
    return Publish(
        topic,
        draw(st.binary(max_size=200)),
        qos,
        draw(st.booleans()),
        draw(st.booleans()) if qos else False,
        draw(packet_ids) if qos else None,
        props,
    )


def acks(cls: type[Puback], version: int) -> st.SearchStrategy[Puback]:
    if version < 5:
        return st.builds(cls, packet_ids)
    reasons = PUBREL_REASONS if cls in (Pubrel, Pubcomp) else PUBACK_REASONS
    return st.builds(cls, packet_ids, st.sampled_from(sorted(reasons)), properties(ACK_PROPS))


@st.composite
def subscribes(draw: st.DrawFn, version: int) -> Subscribe:
    subs = draw(st.lists(st.tuples(filters, st.integers(0, 2)), min_size=1, max_size=4))
    if version < 5:
        subscriptions = tuple(Subscription(f, q) for f, q in subs)
    else:
        subscriptions = tuple(
            Subscription(f, q, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2)))
            for f, q in subs
        )
    props = draw(properties(SUBSCRIBE_PROPS, version=version))
    if len(props.subscription_identifiers) > 1:
        props = Properties(subscription_identifiers=props.subscription_identifiers[:1])
    return Subscribe(draw(packet_ids), subscriptions, props)


def packets(version: int) -> st.SearchStrategy[Packet]:
    """Any packet except CONNECT, valid for ``version``."""
    v5 = version >= 5
    suback_codes = sorted(SUBACK_REASONS) if v5 else [0, 1, 2, 0x80]
    choices: list[st.SearchStrategy[Any]] = [
        st.builds(
            Connack,
            st.booleans(),
            st.sampled_from(sorted(CONNACK_REASONS)) if v5 else st.integers(0, 5),
            properties(CONNACK_PROPS, version=version),
        ),
        publishes(version),
        acks(Puback, version),
        acks(Pubrec, version),
        acks(Pubrel, version),
        acks(Pubcomp, version),
        subscribes(version),
        st.builds(
            Suback,
            packet_ids,
            st.lists(st.sampled_from(suback_codes), min_size=1, max_size=5).map(tuple),
            properties(ACK_PROPS, version=version),
        ),
        st.builds(
            Unsubscribe,
            packet_ids,
            st.lists(filters, min_size=1, max_size=4).map(tuple),
            properties(UNSUBSCRIBE_PROPS, version=version),
        ),
        st.builds(
            Unsuback,
            packet_ids,
            st.lists(st.sampled_from(sorted(UNSUBACK_REASONS)), min_size=1, max_size=4).map(tuple)
            if v5
            else st.just(()),
            properties(ACK_PROPS, version=version),
        ),
        st.just(Pingreq()),
        st.just(Pingresp()),
    ]
    if v5:
        choices += [
            st.builds(
                Disconnect,
                st.sampled_from(sorted(DISCONNECT_REASONS)),
                properties(DISCONNECT_PROPS),
            ),
            st.builds(Auth, st.sampled_from(sorted(AUTH_REASONS)), properties(AUTH_PROPS)),
        ]
    else:
        choices.append(st.just(Disconnect()))
    return st.one_of(choices)


versions = st.sampled_from([4, 5])
