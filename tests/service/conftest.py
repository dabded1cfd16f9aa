"""A real hub on a real SQLite file, and API clients that reach it through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from service_helpers import make_client
from starlette.applications import Starlette

from roost.backplane.sqlite import SqliteBackplane
from roost.config import Settings
from roost.hub.hub import Hub
from roost.service import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        node="test-node",
        mailbox_depth=3,
        telemetry_ack_timeout=0.3,
        max_wait=60.0,
        sweep_interval=3600.0,  # tests sweep by hand
        max_packet_size=8 * 1024,
    )


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    hub = Hub(SqliteBackplane(settings.db_path, node=settings.node), settings)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
async def admin_token(hub: Hub) -> str:
    _, secret = await hub.tokens.create(("admin",), "test admin")
    return secret


@pytest.fixture
def app(hub: Hub) -> Starlette:
    return create_app(hub)


@pytest.fixture
async def client(app: Starlette, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app, admin_token) as c:
        yield c


@pytest.fixture
async def anon(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        yield c
