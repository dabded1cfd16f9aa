"""A device made of paho-mqtt (a client Roost did not write), with blocking helpers for tests."""

from __future__ import annotations

import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 10.0


class PahoDevice:
    """``PahoDevice(port, id, key, version=5)``; ``connect()`` returns the CONNACK reason code."""

    def __init__(
        self,
        port: int,
        device_id: str,
        key: str | None,
        version: int = 5,
        *,
        clean: bool = True,
        session_expiry: int | None = None,
        username: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.port = port
        self.device_id = device_id
        self.version = version
        self.clean = clean
        self.session_expiry = session_expiry
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {} if version == 5 else {"clean_session": clean}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id if client_id is not None else device_id,
            protocol=protocol,
            **kwargs,
        )
        if key is not None:
            self.client.username_pw_set(username if username is not None else device_id, key)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[tuple[int, bool]] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        self.disconnected = threading.Event()
        self.disconnect_reason: int | None = None
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack.put((rc.value, bool(flags.session_present)))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self.subacks.put([rc.value for rc in rcs])

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnect_reason = rc.value
        self.disconnected.set()

    def connect(self, keepalive: int = 30) -> int:
        """Connect and wait for CONNACK; returns its reason code (0 = accepted)."""
        kwargs: dict[str, Any] = {}
        if self.version == 5:
            kwargs["clean_start"] = self.clean
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = props
        self.client.reconnect_delay_set(60, 120)  # tests decide when to reconnect
        self.client.connect("127.0.0.1", self.port, keepalive=keepalive, **kwargs)
        self.client.loop_start()
        code, self.session_present = self.connack.get(timeout=TIMEOUT)
        return code

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=TIMEOUT)

    def publish(
        self, topic: str, payload: bytes = b"", qos: int = 1, properties: Properties | None = None
    ) -> None:
        info = self.client.publish(topic, payload, qos, properties=properties)
        if qos:
            info.wait_for_publish(TIMEOUT)

    def expect(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def expect_none(self, timeout: float = 1.0) -> None:
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {msg.topic}: {msg.payload!r}")

    def close(self) -> None:
        self.client.disconnect()
        if self.disconnected.is_set():
            # Closed by the server: paho's loop thread sits in its reconnect wait and
            # notices loop_stop only after up to a second; do not hold the test up.
            threading.Thread(target=self.client.loop_stop, daemon=True).start()
        else:
            self.client.loop_stop()


def user_props(msg: mqtt.MQTTMessage) -> dict[str, str]:
    props = getattr(msg, "properties", None)
    return dict(getattr(props, "UserProperty", []) or [])
