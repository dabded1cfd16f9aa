"""The CLI against the real API app and hub, through the SDK's transport hook.

Click commands run their own event loop (``asyncio.run``), so each one runs in
a worker thread, and :class:`LoopBridge` carries its requests over to the
test's loop, where the hub and the app live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_helpers import Invoke, LoopBridge
from click.testing import CliRunner, Result

from roost.backplane.sqlite import SqliteBackplane
from roost.cli.main import cli
from roost.config import Settings
from roost.hub.hub import Hub
from roost.service import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        node="cli-node",
        mailbox_depth=10,
        telemetry_ack_timeout=0.3,
        sweep_interval=3600.0,
    )


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    settings.data_dir.mkdir()
    hub = Hub(SqliteBackplane(settings.db_path, node=settings.node), settings)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
async def admin_token(hub: Hub) -> str:
    _, secret = await hub.tokens.create(("admin",), "cli tests")
    return secret


@pytest.fixture
async def invoke(hub: Hub, admin_token: str) -> Invoke:
    """``await invoke("device", "add", "d1")``: run ``roost ...`` against the hub."""
    bridge = LoopBridge(create_app(hub), asyncio.get_running_loop())

    async def run(*args: str, input: bytes | str | None = None, token: bool = True) -> Result:
        env = {
            "ROOST_TOKEN": admin_token if token else None,
            "ROOST_URL": None,
            "ROOST_DATA_DIR": None,
        }
        return await asyncio.to_thread(
            CliRunner().invoke, cli, list(args), input=input, env=env, obj={"transport": bridge}
        )

    return run
