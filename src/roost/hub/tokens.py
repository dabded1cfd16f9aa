"""API tokens: bearer secrets for the service API, stored hashed in the backplane."""

from __future__ import annotations

import os
import time
from pathlib import Path

from roost.backplane.base import Backplane
from roost.errors import AuthError, InvalidInput, NotFound
from roost.hub.auth import hash_token, new_token
from roost.model import ApiToken

SCOPES = ("admin", "devices", "messages", "telemetry", "inquiries", "feedback")
ADMIN_TOKEN_KEY = "admin_token_id"
CACHE_SECONDS = 5.0  # a token revoked on another node stops working within this
CACHE_MAX = 1024  # valid tokens remembered per node (invalid ones never are)


class Tokens:
    def __init__(self, backplane: Backplane) -> None:
        self._bp = backplane
        # token hash -> (token, monotonic time it was read): every API request
        # authenticates, and a backplane read per request is most of a command's cost
        self._cache: dict[str, tuple[ApiToken, float]] = {}
        # bumped when a revocation starts and ends: a lookup that overlapped one may have
        # read the token before its removal, so its answer is not cached
        self._revocations = 0

    async def authenticate(self, secret: str | None) -> ApiToken:
        if not secret:
            raise AuthError("missing bearer token (Authorization: Bearer <token>)")
        token_hash = hash_token(secret)
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        revocations = self._revocations
        token = await self._bp.token_find(token_hash)
        if token is None:
            self._cache.pop(token_hash, None)
            raise AuthError("invalid token")
        if revocations == self._revocations:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[token_hash] = (token, now)
        return token

    async def create(
        self, scopes: tuple[str, ...] = ("admin",), description: str = ""
    ) -> tuple[ApiToken, str]:
        unknown = set(scopes) - set(SCOPES)
        if not scopes or unknown:
            raise InvalidInput(f"scopes must be some of {', '.join(SCOPES)}")
        token_id, secret, token_hash = new_token()
        token = ApiToken(token_id, token_hash, tuple(scopes), description, time.time())
        await self._bp.token_create(token)
        return token, secret

    async def add_secret(self, secret: str, description: str) -> ApiToken:
        """Store a token whose secret the operator chose (``ROOST_ADMIN_TOKEN``)."""
        existing = await self._bp.token_find(hash_token(secret))
        if existing is not None:
            return existing
        token_id, _, _ = new_token()
        token = ApiToken(token_id, hash_token(secret), ("admin",), description, time.time())
        await self._bp.token_create(token)
        return token

    async def list(self) -> list[ApiToken]:
        return await self._bp.token_list()

    async def revoke(self, token_id: str) -> None:
        self._forget(token_id)
        try:
            if not await self._bp.token_delete(token_id):
                raise NotFound(f"no token {token_id!r}")
        finally:
            self._forget(token_id)  # what a lookup cached while the removal was committed

    def _forget(self, token_id: str) -> None:
        self._revocations += 1
        self._cache = {h: c for h, c in self._cache.items() if c[0].id != token_id}

    async def ensure_admin(
        self, data_dir: Path, token_file: Path | None, preset: str | None
    ) -> Path | None:
        """Make sure an admin token exists; return the file a new one was written to.

        A preset secret (``--admin-token-file`` / ``ROOST_ADMIN_TOKEN``) is
        stored and nothing is written. Otherwise the first node to start creates
        one token and writes it to ``DATA_DIR/admin.token`` (mode 0600); a node
        joining an existing backplane creates none.
        """
        if token_file is not None:
            try:
                preset = Path(token_file).read_text().strip()
            except OSError as exc:
                raise InvalidInput(f"cannot read admin token file {token_file}: {exc}") from exc
        if preset:
            await self.add_secret(preset, "preset admin token")
            return None
        if await self._bp.meta_get(ADMIN_TOKEN_KEY) is not None:
            return None
        token, secret = await self.create(("admin",), "first admin token")
        if await self._bp.meta_put_if_absent(ADMIN_TOKEN_KEY, token.id) != token.id:
            await self._bp.token_delete(token.id)  # another node won the race
            return None
        path = data_dir / "admin.token"
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, 0o600)
        return path
