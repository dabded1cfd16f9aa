"""The SDK against a real hub on a real SQLite file, through the API app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from roost.backplane.sqlite import SqliteBackplane
from roost.config import Settings
from roost.hub.hub import Hub
from roost.sdk import Service
from roost.service import create_app

URL = "http://roost.test"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        node="sdk-node",
        mailbox_depth=10,
        telemetry_ack_timeout=0.3,
        sweep_interval=3600.0,
    )


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    hub = Hub(SqliteBackplane(settings.db_path, node=settings.node), settings)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
def app(hub: Hub) -> Starlette:
    return create_app(hub)


@pytest.fixture
async def admin_token(hub: Hub) -> str:
    _, secret = await hub.tokens.create(("admin",), "sdk tests")
    return secret


@pytest.fixture
async def service(app: Starlette, admin_token: str) -> AsyncIterator[Service]:
    async with Service(URL, admin_token, transport=httpx.ASGITransport(app=app)) as s:
        yield s
