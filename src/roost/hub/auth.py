"""Secrets: device keys and API tokens, generated random and stored only as hashes.

Keys and tokens are 256-bit random secrets, so a salted SHA-256 is enough to
store them (there is nothing to brute-force); verification compares in
constant time. A user-supplied device key must be at least 16 characters.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from roost.errors import InvalidInput

MIN_KEY_LENGTH = 16
TOKEN_PREFIX = "roost_"


def new_secret() -> str:
    """A fresh 256-bit secret, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Hash a device key for storage: ``sha256$<salt>$<digest>``."""
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidInput(f"device keys must be at least {MIN_KEY_LENGTH} characters")
    salt = secrets.token_hex(8)
    digest = hashlib.sha256((salt + key).encode()).hexdigest()
    return f"sha256${salt}${digest}"


def verify_key(key: str | bytes | None, stored: str) -> bool:
    """Constant-time check of a presented key against its stored hash."""
    if key is None:
        return False
    if isinstance(key, bytes):
        try:
            key = key.decode()
        except UnicodeDecodeError:
            return False
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    presented = hashlib.sha256((salt + key).encode()).hexdigest()
    return hmac.compare_digest(presented, digest)


def new_token() -> tuple[str, str, str]:
    """A new API token: ``(token_id, secret, secret_hash)``; the secret is shown once."""
    token_id = "tok_" + secrets.token_hex(6)
    secret = TOKEN_PREFIX + new_secret()
    return token_id, secret, hash_token(secret)


def hash_token(secret: str) -> str:
    """Tokens are looked up by hash, so this one is unsalted (the secret is random)."""
    return hashlib.sha256(secret.encode()).hexdigest()
