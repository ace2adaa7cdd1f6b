"""API keys: high-entropy random tokens with a visible id, stored only as a SHA-256 hash."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

KEY_PREFIX = "tnt"
_DUMMY_HASH = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    token: str
    key_hash: bytes


def hash_key(token: str) -> bytes:
    """SHA-256 suffices: the token carries 256 random bits, so no stretching is needed."""
    return hashlib.sha256(token.encode()).digest()


def new_api_key() -> NewKey:
    """A key shown once to the client: `tnt_<key id>_<secret>`; the key id is safe to log."""
    key_id = secrets.token_hex(6)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, token=token, key_hash=hash_key(token))


def key_id_of(token: str) -> str | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != 12 or not secret:
        return None
    return key_id


def key_matches(token: str | None, key_hashes: Mapping[str, bytes]) -> bool:
    """Constant-time check of a presented token against a tenant's active key hashes.

    A hash is compared even when the key id is unknown, so timing does not tell which keys exist.
    """
    key_id = key_id_of(token) if token else None
    stored = key_hashes.get(key_id, _DUMMY_HASH) if key_id else _DUMMY_HASH
    presented = hash_key(token or "")
    return hmac.compare_digest(presented, stored) and stored is not _DUMMY_HASH
