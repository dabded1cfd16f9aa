"""Topic names, filters and matching (MQTT 5.0 §4.7, §4.8.2)."""

from __future__ import annotations

import pytest

from roost.errors import TopicNameInvalid
from roost.proto.mqtt import split_shared, topic_matches, validate_topic_filter, validate_topic_name


@pytest.mark.parametrize("name", ["a", "a/b", "/", "a//b", "$SYS/x", "é/🙂", "x" * 65_535])
def test_valid_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",  # [MQTT-4.7.3-1]
        "a/+",  # [MQTT-3.3.2-2]
        "a/#",
        "a+b",
        "a\x00b",  # [MQTT-4.7.3-2]
        "x" * 65_536,  # [MQTT-4.7.3-3]
        "é" * 32_768,  # 65,536 bytes in UTF-8
    ],
)
def test_invalid_topic_names(name: str) -> None:
    with pytest.raises(TopicNameInvalid):
        validate_topic_name(name)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+",
        "a/#",
        "a/+/b",
        "+/+",
        "/+",
        "a//#",
        "$share/g/a/#",
        "$share/g//",
        "sport/+/player1",
    ],
)
def test_valid_topic_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "",
        "a/#/b",  # '#' not last [MQTT-4.7.1-2]
        "a#",  # '#' not alone in its level
        "a/b#",
        "a+",  # '+' not alone in its level [MQTT-4.7.1-3]
        "a/+b/c",
        "$share//a",  # empty share name [MQTT-4.8.2-1]
        "$share/g+/a",
        "$share/g",  # no filter after the share name [MQTT-4.8.2-2]
        "$share/g/",
        "a\x00",
    ],
)
def test_invalid_topic_filters(topic_filter: str) -> None:
    with pytest.raises(TopicNameInvalid):
        validate_topic_filter(topic_filter)


def test_split_shared() -> None:
    assert split_shared("$share/group/a/+") == ("group", "a/+")
    assert split_shared("a/+") == (None, "a/+")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sport/tennis/player1/#", "sport/tennis/player1", True),  # §4.7.1.2: parent level
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "anything/at/all", True),
        ("sport/tennis/+", "sport/tennis/player1", True),  # §4.7.1.3
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+/c", "a/b/d", False),
        ("a/b/c", "a/b", False),
        ("#", "$SYS/broker", False),  # [MQTT-4.7.2-1]
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),  # [MQTT-4.7.2-1]
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("a/#", "$a/b", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
