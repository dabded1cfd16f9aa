"""``Device``: play a device over MQTT with paho-mqtt (simulators, tests, examples).

    with Device("127.0.0.1", 1883, "truck-7", key) as d:
        d.on_command(lambda cmd: d.respond(cmd.cid, 200, b"done"))
        d.telemetry(b'{"speed": 80}', path="speed")

It follows the device-facing contract of DESIGN.md. Callbacks run on paho's
network thread, so keep them short. paho-mqtt is an optional dependency
(``pip install paho-mqtt``); it is imported when a ``Device`` is made.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from roost.errors import BadCredentials, Timeout, Unavailable

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    cid: str
    payload: bytes
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str
    payload: bytes
    group: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    name: str
    rid: str
    payload: bytes
    end: bool  # the inquiry is over (a final reply, or the end marker after the last)


def _props(msg: mqtt.MQTTMessage) -> tuple[dict[str, str], str | None]:
    props = getattr(msg, "properties", None)
    user = dict(getattr(props, "UserProperty", None) or [])
    return user, getattr(props, "ContentType", None)


class Device:
    def __init__(
        self,
        host: str,
        port: int,
        device_id: str,
        key: str,
        *,
        version: int = 5,
        keepalive: int = 30,
        timeout: float = 10.0,
    ) -> None:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("roost.sdk.Device needs paho-mqtt: pip install paho-mqtt") from exc
        self.host, self.port, self.id = host, port, device_id
        self.version = version
        self.keepalive = keepalive
        self.timeout = timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device_id,
            protocol=mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311,
        )
        self._client.username_pw_set(device_id, key)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._connected = threading.Event()
        self._network_thread: int | None = None  # where callbacks run
        self._connack: int | None = None
        self._subacks: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._filters: list[str] = []
        self._on_command: Callable[[Command], None] | None = None
        self._on_notification: Callable[[Notification], None] | None = None
        self._on_reply: Callable[[Reply], None] | None = None

    # --- connection --------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and wait for CONNACK; raises BadCredentials if refused."""
        self._client.connect(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()
        if not self._connected.wait(self.timeout):
            self.close()
            raise Timeout(f"no CONNACK from {self.host}:{self.port}")
        if self._connack:
            self.close()
            if self._connack in (0x86, 0x87, 4, 5):
                raise BadCredentials(f"connection refused (reason {self._connack:#x})")
            raise Unavailable(f"connection refused (reason {self._connack:#x})")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Device:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._network_thread = threading.get_ident()
        self._connack = int(reason.value)
        self._connected.set()
        if not reason.is_failure:
            for topic_filter in self._filters:  # again after a reconnect
                client.subscribe(topic_filter, 1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._lock:
            done = self._subacks.pop(mid, None)
        if done is not None:
            done.set()

    def _subscribe(self, topic_filter: str) -> None:
        if topic_filter in self._filters:
            return
        self._filters.append(topic_filter)
        if not self._connected.is_set():
            return  # subscribed on connect
        done = threading.Event()
        with self._lock:
            _, mid = self._client.subscribe(topic_filter, 1)
            if mid is None:
                raise Unavailable(f"cannot subscribe to {topic_filter}: not connected")
            self._subacks[mid] = done
        if not done.wait(self.timeout):
            raise Timeout(f"no SUBACK for {topic_filter}")

    # --- device to service ---------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, qos: int = 1, **props: Any) -> None:
        properties = None
        if self.version == 5 and props:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            for name, value in props.items():
                setattr(properties, name, value)
        info = self._client.publish(topic, payload, qos, properties=properties)
        # Inside a callback the network thread is ours: waiting there for the
        # PUBACK would stop it from reading the PUBACK.
        if qos and threading.get_ident() != self._network_thread:
            info.wait_for_publish(self.timeout)
            if not info.is_published():
                raise Timeout(f"no PUBACK for {topic} within {self.timeout:g} s")

    def telemetry(
        self, payload: bytes, path: str = "", *, qos: int = 1, content_type: str | None = None
    ) -> None:
        """Publish telemetry; with QoS 1 this returns once the gateway has stored it."""
        topic = f"devices/{self.id}/telemetry" + (f"/{path}" if path else "")
        extra = {"ContentType": content_type} if content_type else {}
        self._publish(topic, payload, qos, **extra)

    def respond(self, cid: str, status: int = 200, payload: bytes = b"", *,
                content_type: str | None = None) -> None:
        """Answer command ``cid`` with a status and a body (and, on MQTT 5, its type)."""
        extra = {"ContentType": content_type} if content_type else {}
        self._publish(f"devices/{self.id}/responses/{cid}/{status}", payload, 1, **extra)

    def ask(self, name: str, payload: bytes = b"", *, rid: str | None = None) -> str:
        """Ask inquiry ``name``; returns the request id its replies will carry."""
        rid = rid or secrets.token_hex(4)
        self._publish(f"devices/{self.id}/inquiries/{name}/{rid}", payload)
        return rid

    def cancel(self, name: str, rid: str) -> None:
        """End a continuous inquiry."""
        self._publish(f"devices/{self.id}/inquiries/{name}/{rid}/cancel", b"")

    # --- service to device ---------------------------------------------------------------

    def on_command(self, handler: Callable[[Command], None]) -> Callable[[Command], None]:
        self._on_command = handler
        self._subscribe(f"devices/{self.id}/commands/#")
        return handler

    def on_notification(
        self, handler: Callable[[Notification], None]
    ) -> Callable[[Notification], None]:
        self._on_notification = handler
        self._subscribe(f"devices/{self.id}/notifications/#")
        return handler

    def on_reply(self, handler: Callable[[Reply], None]) -> Callable[[Reply], None]:
        self._on_reply = handler
        self._subscribe(f"devices/{self.id}/replies/#")
        return handler

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        prefix = f"devices/{self.id}/"
        if not msg.topic.startswith(prefix):
            return
        family, _, rest = msg.topic[len(prefix) :].partition("/")
        user, content_type = _props(msg)
        payload = bytes(msg.payload)
        if family == "commands" and self._on_command is not None:
            name, _, cid = rest.rpartition("/")
            self._on_command(Command(name, cid, payload, content_type))
        elif family == "notifications" and self._on_notification is not None:
            self._on_notification(Notification(rest, payload, user.get("group"), content_type))
        elif family == "replies" and self._on_reply is not None:
            parts = rest.split("/")
            end = user.get("end") == "1" or (len(parts) == 3 and parts[2] == "end")
            self._on_reply(Reply(parts[0], parts[1] if len(parts) > 1 else "", payload, end))
