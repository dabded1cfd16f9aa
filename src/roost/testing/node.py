"""Run a real Roost node on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from roost.config import Settings
from roost.node import Node


@contextlib.asynccontextmanager
async def running_node(data_dir: Path, **settings: Any) -> AsyncIterator[Node]:
    """A started node on 127.0.0.1 with OS-chosen ports; its admin token is in ``node.admin_token``.

    Any :class:`Settings` field may be overridden (e.g. ``mailbox_depth=5``).
    """
    values: dict[str, Any] = {
        "data_dir": Path(data_dir),
        "host": "127.0.0.1",
        "mqtt_port": 0,
        "http_port": 0,
        "node": "test",
    }
    values.update(settings)
    node = Node(Settings(**values))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def admin_token(node: Node) -> str:
    path = node.admin_token_path or node.settings.data_dir / "admin.token"
    return Path(path).read_text().strip()
