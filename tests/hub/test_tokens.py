"""API tokens on one node: the cache of valid tokens and revocation."""

from __future__ import annotations

import asyncio

import pytest

from backplane.helpers import held
from roost.backplane.sqlite import SqliteBackplane
from roost.errors import AuthError
from roost.hub.hub import Hub


async def test_a_token_read_while_its_revocation_commits_stays_revoked(hub: Hub) -> None:
    """A request that looks the token up while its removal is being committed may still
    be let in (it raced the revocation), but once ``revoke`` has returned the token is
    refused on this node at once, not when the cache entry runs out."""
    assert isinstance(hub.backplane, SqliteBackplane)
    token, secret = await hub.tokens.create(("messages",))
    await hub.tokens.authenticate(secret)
    async with held(hub.backplane):  # the removal waits behind this batch
        revoking = asyncio.ensure_future(hub.tokens.revoke(token.id))
        await asyncio.sleep(0.02)
        assert (await hub.tokens.authenticate(secret)).id == token.id  # read before removal
    await revoking
    with pytest.raises(AuthError):
        await hub.tokens.authenticate(secret)
