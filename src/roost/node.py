"""One Roost node: backplane, hub, device listeners and service API, run together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette

from roost.backplane.base import Backplane
from roost.config import Settings
from roost.errors import InvalidInput
from roost.hub.hub import Hub
from roost.service.app import close_long_polls, create_app

if TYPE_CHECKING:
    from roost.backplane.nats import NatsOptions
    from roost.edge.mqtt.listener import MqttListener

log = logging.getLogger("roost.node")


def make_backplane(settings: Settings) -> Backplane:
    """The cluster backplane when ``nats`` is set, else the embedded SQLite store."""
    if settings.nats:
        try:
            from roost.backplane.nats import NatsBackplane
        except ImportError as exc:
            raise InvalidInput(
                f"--nats needs the cluster extra ({exc}): pip install 'roost[cluster]'"
            ) from None
        return NatsBackplane(nats_options(settings), node=settings.node)
    from roost.backplane.sqlite import SqliteBackplane

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteBackplane(settings.db_path, node=settings.node)


MAILBOX_CAP_MARGIN = 1000  # JetStream's per-device cap: the depth limit plus this


def nats_options(settings: Settings) -> NatsOptions:
    """The cluster backplane's options from the node's settings."""
    from roost.backplane.nats import NatsOptions

    servers = tuple(u.strip() for u in (settings.nats or "").split(",") if u.strip())
    if not servers:
        raise InvalidInput("--nats needs at least one URL, e.g. nats://127.0.0.1:4222")
    return NatsOptions(
        servers=servers,
        prefix=settings.nats_prefix,
        replicas=settings.nats_replicas,
        ttl_max=settings.ttl_max,
        mailbox_cap=settings.mailbox_depth + MAILBOX_CAP_MARGIN,
        telemetry_retention=settings.telemetry_retention,
        telemetry_max_records=settings.telemetry_max_records,
        telemetry_ack_timeout=settings.telemetry_ack_timeout,
        feedback_retention=settings.feedback_retention,
        inquiry_lease=settings.inquiry_lease,
        name=f"roost:{settings.node}",
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (tests, benchmarks).

    Made with ``proto=IPPROTO_TCP`` and TCP_NODELAY set: asyncio turns Nagle off on
    accepted sockets only for such listeners (uvloop always does), and Linux passes
    the option on to accepted sockets. With Nagle on, a reply written in two parts
    waits ~40 ms for the peer's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside a node: the node, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Node:
    def __init__(self, settings: Settings, backplane: Backplane | None = None) -> None:
        self.settings = settings
        self.hub = Hub(backplane or make_backplane(settings), settings)
        self.admin_token_path: Path | None = None
        self.mqtt_port = 0
        self.http_port = 0
        self._mqtt: MqttListener | None = None
        self._app: Starlette | None = None
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from roost.edge.mqtt.listener import start_mqtt

        s = self.settings
        await self.hub.start()
        self.admin_token_path = await self.hub.tokens.ensure_admin(
            s.data_dir, s.admin_token_file, s.admin_token
        )
        mqtt_sock = bind(s.host, s.mqtt_port)
        http_sock = bind(s.host, s.http_port)
        self.mqtt_port = mqtt_sock.getsockname()[1]
        self.http_port = http_sock.getsockname()[1]
        self._mqtt = await start_mqtt(self.hub, mqtt_sock)
        self._app = create_app(self.hub)
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            proxy_headers=False,  # nothing reads the client address; saves a layer per request
            loop="none",
        )
        self._http = EmbeddedServer(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._mqtt is not None:
            await self._mqtt.close()
        self.hub.messages.release_waiters()
        if self._app is not None:
            close_long_polls(self._app)  # answer waiting long polls so the server can stop
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._http_task
        await self.hub.stop()
