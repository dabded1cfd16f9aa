"""A hub on the embedded store, driven directly (no sockets, no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.backplane.sqlite import SqliteBackplane
from roost.config import Settings
from roost.hub.hub import Hub


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = Settings(data_dir=tmp_path)
    hub = Hub(SqliteBackplane(settings.db_path), settings)
    await hub.start()
    yield hub
    await hub.stop()
