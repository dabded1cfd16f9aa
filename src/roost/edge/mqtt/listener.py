"""The MQTT listener: accepts connections and enforces CONNECT timeout and keepalive."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

from roost.edge.mqtt.protocol import MqttProtocol
from roost.hub.hub import Hub
from roost.metrics import track_connections
from roost.proto.mqtt.connection import ConnState
from roost.proto.mqtt.constants import ReasonCode

SWEEP_EVERY = 1.0
KEEPALIVE_GRACE = 1.5  # MQTT 5.0 §3.1.2.10: close after 1.5 × keep alive without a packet


class MqttListener:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.connections: set[MqttProtocol] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: MqttProtocol(self), sock=sock)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="roost-mqtt-keepalive")
        track_connections(lambda: len(self.hub.links), lambda: len(self.connections))

    async def close(self) -> None:
        """Stop accepting, then close every connection (MQTT 5: "server shutting down")."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        for proto in list(self.connections):
            proto.close(int(ReasonCode.SERVER_SHUTTING_DOWN))
        for _ in range(200):  # let connection_lost run, so the hub can release presence
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def sweep(self, now: float) -> None:
        """Close connections that never finished CONNECT or went silent."""
        connect_timeout = self.hub.settings.connect_timeout
        for proto in list(self.connections):
            idle = now - proto.last_rx
            if proto.conn.state in (ConnState.AWAIT_CONNECT, ConnState.CONNECTING):
                if now - proto.opened_at > connect_timeout:
                    proto.close(int(ReasonCode.MAXIMUM_CONNECT_TIME))
            elif proto.keepalive and idle > proto.keepalive * KEEPALIVE_GRACE:
                proto.close(int(ReasonCode.KEEP_ALIVE_TIMEOUT))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            self.sweep(time.monotonic())


async def start_mqtt(hub: Hub, sock: socket.socket) -> MqttListener:
    listener = MqttListener(hub)
    await listener.start(sock)
    return listener
