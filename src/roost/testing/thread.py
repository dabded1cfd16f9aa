"""A Roost node on its own event loop in a background thread, for synchronous tests.

Blocking clients (paho-mqtt, httpx.Client, mosquitto_pub) can then be used
from plain test functions without stalling the node.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from roost.config import Settings
from roost.node import Node

T = TypeVar("T")


class NodeThread:
    """``with NodeThread(tmp_path) as node:`` — then ``node.mqtt_port``, ``node.url``."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        values: dict[str, Any] = {
            "data_dir": Path(data_dir),
            "host": "127.0.0.1",
            "mqtt_port": 0,
            "http_port": 0,
            "node": "test",
        }
        values.update(settings)
        self.settings = Settings(**values)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="roost-node", daemon=True
        )
        self.node: Node | None = None

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the node's loop and return its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> NodeThread:
        self._thread.start()
        self.node = Node(self.settings)
        self.call(self.node.start())
        return self

    def stop(self) -> None:
        if self.node is not None:
            self.call(self.node.stop())
            self.node = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> NodeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def hub(self) -> Any:
        assert self.node is not None
        return self.node.hub

    @property
    def mqtt_port(self) -> int:
        assert self.node is not None
        return self.node.mqtt_port

    @property
    def url(self) -> str:
        assert self.node is not None
        return f"http://127.0.0.1:{self.node.http_port}"

    @property
    def token(self) -> str:
        return (self.settings.data_dir / "admin.token").read_text().strip()
