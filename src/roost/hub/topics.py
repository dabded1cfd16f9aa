"""The device topic contract (DESIGN.md, "Device-facing contract").

Everything a device may touch lives under ``devices/{d}/``. Per-connection
state is computed once (:class:`DeviceTopics`), so routing a publish is a few
string comparisons, not topic building.
"""

from __future__ import annotations

from enum import Enum

from roost.errors import ProtocolError
from roost.model import MailboxMessage, MessageKind
from roost.proto.mqtt.topics import validate_topic_filter

SUBSCRIBABLE = ("commands", "notifications", "replies")


class Route(Enum):
    TELEMETRY = "telemetry"
    RESPONSE = "response"
    INQUIRY = "inquiry"
    CANCEL = "cancel"


class DeviceTopics:
    """A device's topic space: classifies its publishes and vets its subscriptions."""

    __slots__ = ("device", "prefix", "telemetry", "_telemetry_slash", "_n")

    def __init__(self, device: str) -> None:
        self.device = device
        self.prefix = f"devices/{device}/"
        self.telemetry = self.prefix + "telemetry"
        self._telemetry_slash = self.telemetry + "/"
        self._n = len(self.prefix)

    def telemetry_path(self, topic: str) -> str | None:
        """The path of a telemetry topic ("" for the bare one), or None if not telemetry."""
        if topic == self.telemetry:
            return ""
        if topic.startswith(self._telemetry_slash) and len(topic) > len(self._telemetry_slash):
            return topic[len(self._telemetry_slash) :]
        return None

    def classify(self, topic: str) -> tuple[Route, list[str]] | None:
        """Route a publish: ``(route, arguments)``, or None if the device may not publish there.

        * ``telemetry[/path]`` → TELEMETRY, [path]
        * ``responses/{cid}[/{status}]`` → RESPONSE, [cid, status?]
        * ``inquiries/{name}/{rid}`` → INQUIRY, [name, rid]
        * ``inquiries/{name}/{rid}/cancel`` → CANCEL, [name, rid]
        """
        path = self.telemetry_path(topic)
        if path is not None:
            return Route.TELEMETRY, [path]
        if not topic.startswith(self.prefix):
            return None
        levels = topic[self._n :].split("/")
        if any(not level for level in levels):
            return None
        head, args = levels[0], levels[1:]
        if head == "responses" and len(args) in (1, 2):
            return Route.RESPONSE, args
        if head == "inquiries" and len(args) == 2:
            return Route.INQUIRY, args
        if head == "inquiries" and len(args) == 3 and args[2] == "cancel":
            return Route.CANCEL, args[:2]
        return None

    def may_subscribe(self, topic_filter: str) -> bool:
        """Only filters that cannot match outside the device's own space.

        ``devices/{d}/#`` and anything under ``devices/{d}/commands|notifications|replies``;
        a wildcard in the first two levels (``#``, ``devices/+/...``) could reach
        other devices, and ``$`` topics are not for devices.
        """
        try:
            validate_topic_filter(topic_filter)
        except ProtocolError:
            return False
        if topic_filter == self.prefix + "#":
            return True
        if not topic_filter.startswith(self.prefix):
            return False
        head = topic_filter[self._n :].split("/", 1)[0]
        return head in SUBSCRIBABLE or head in ("+", "#")


def delivery_topic(msg: MailboxMessage, device: str) -> str:
    """The topic a mailbox message is published on to ``device``."""
    if msg.kind is MessageKind.COMMAND:
        return f"devices/{device}/commands/{msg.name}/{msg.ref}"
    if msg.kind is MessageKind.NOTIFICATION:
        return f"devices/{device}/notifications/{msg.name}"
    return f"devices/{device}/replies/{msg.name}/{msg.ref}"


def response_topic(device: str, cid: str) -> str:
    return f"devices/{device}/responses/{cid}"
