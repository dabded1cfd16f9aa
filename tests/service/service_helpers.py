"""Helpers shared by the API tests."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from roost.hub.hub import Hub
from roost.model import MailboxMessage, MessageKind


def make_client(app: Starlette, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://roost.test", headers=headers
    )


async def register(client: httpx.AsyncClient, device_id: str, *groups: str) -> str:
    r = await client.post("/v1/devices", json={"id": device_id, "groups": list(groups)})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


async def wait_for_command(hub: Hub, device: str) -> MailboxMessage:
    """The first command in the device's mailbox, once it is there."""
    while True:
        for msg in await hub.messages.pending(device):
            if msg.kind is MessageKind.COMMAND:
                return msg
        await asyncio.sleep(0.01)
