"""Topic names, topic filters and matching (MQTT 5.0 §4.7, 3.1.1 §4.7).

All three functions work on decoded ``str`` values. The validators raise
:class:`~roost.errors.TopicNameInvalid` (reason 0x90); a caller answering a
SUBSCRIBE maps a bad filter to SUBACK reason 0x8F (v5) or 0x80 (3.1.1)
itself. Shared subscriptions (``$share/{name}/{filter}``, §4.8.2) are accepted
by :func:`validate_topic_filter`; :func:`topic_matches` expects the filter
after the share prefix has been removed (see :func:`split_shared`).
"""

from __future__ import annotations

from roost.errors import TopicNameInvalid

_MAX_TOPIC_BYTES = 65_535
SHARE_PREFIX = "$share/"


def _check_common(value: str, what: str) -> None:
    if not value:
        raise TopicNameInvalid(f"{what} is empty [MQTT-4.7.3-1]")
    if "\x00" in value:
        raise TopicNameInvalid(f"{what} contains U+0000 [MQTT-4.7.3-2]")
    # Every UTF-8 sequence is at most 4 bytes, so short strings need no encode.
    if len(value) * 4 > _MAX_TOPIC_BYTES and len(value.encode()) > _MAX_TOPIC_BYTES:
        raise TopicNameInvalid(f"{what} longer than 65535 bytes [MQTT-4.7.3-3]")


def validate_topic_name(name: str) -> None:
    """A topic name: non-empty, no wildcards, at most 65,535 bytes.

    MQTT 5.0 §4.7.3 [MQTT-4.7.3-1/2/3] and [MQTT-3.3.2-2] (no ``+`` or ``#``).
    """
    _check_common(name, "topic name")
    if "+" in name or "#" in name:
        raise TopicNameInvalid("wildcard in topic name [MQTT-3.3.2-2]")


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split ``$share/{ShareName}/{filter}`` into the share name and the filter.

    Returns ``(None, topic_filter)`` for a filter that is not shared (§4.8.2).
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    share, sep, rest = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not share or not sep or "+" in share or "#" in share:
        raise TopicNameInvalid("bad shared subscription filter [MQTT-4.8.2-1/2]")
    return share, rest


def validate_topic_filter(topic_filter: str) -> None:
    """A topic filter (MQTT 5.0 §4.7.1, §4.8.2).

    ``#`` may only be the whole last level (3.1.1 [MQTT-4.7.1-2]); ``+`` must
    fill its whole level (3.1.1 [MQTT-4.7.1-3]); a shared filter needs a
    non-empty share name without wildcards, and a filter after it (5.0
    [MQTT-4.8.2-1/2]). Clause ids are those of 3.1.1; 5.0 numbers the same
    rules [MQTT-4.7.1-1] and [MQTT-4.7.1-2].
    """
    _check_common(topic_filter, "topic filter")
    _, real = split_shared(topic_filter)
    if not real:
        raise TopicNameInvalid("shared subscription without a topic filter [MQTT-4.8.2-2]")
    if "+" not in real and "#" not in real:
        return
    levels = real.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise TopicNameInvalid("'#' must be the last level on its own [MQTT-4.7.1-2]")
        if "+" in level and level != "+":
            raise TopicNameInvalid("'+' must occupy a whole level [MQTT-4.7.1-3]")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether a (valid, non-shared) topic filter matches a topic name (MQTT 5.0 §4.7).

    ``#`` also matches the parent level (``a/#`` matches ``a``, §4.7.1.2).
    Filters starting with a wildcard never match topics starting with ``$``
    [MQTT-4.7.2-1].
    """
    if topic[:1] == "$" and topic_filter[:1] in ("+", "#"):
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    n_topic = len(t_levels)
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= n_topic:
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == n_topic
