"""API keys: unguessable tokens, stored only as hashes, checked in constant time."""

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy.keys import KEY_PREFIX, NewKey, hash_key, key_id_of, key_matches, new_api_key

PROPERTY = settings(max_examples=300, deadline=None)

TOKEN_SHAPE = re.compile(r"tnt_([0-9a-f]{12})_([A-Za-z0-9_-]+)")


def secret_of(key: NewKey) -> str:
    return key.token[len(f"{KEY_PREFIX}_{key.key_id}_") :]


def stored(*keys: NewKey) -> dict[str, bytes]:
    """The key id -> hash mapping a tenant keeps for its active keys."""
    return {key.key_id: key.key_hash for key in keys}


# --- issuing ---------------------------------------------------------------------------------


def test_new_key_has_the_documented_shape() -> None:
    key = new_api_key()
    match = TOKEN_SHAPE.fullmatch(key.token)
    assert match is not None, key.token
    assert match.group(1) == key.key_id
    assert key.token.startswith(f"{KEY_PREFIX}_{key.key_id}_")


def test_new_key_secret_carries_at_least_256_bits() -> None:
    for _ in range(50):
        secret = secret_of(new_api_key())
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        assert len(raw) * 8 >= 256


def test_new_keys_are_unique() -> None:
    keys = [new_api_key() for _ in range(1000)]
    assert len({key.token for key in keys}) == len(keys)
    assert len({key.key_id for key in keys}) == len(keys)
    assert len({key.key_hash for key in keys}) == len(keys)


def test_stored_hash_is_the_sha256_of_the_token_and_never_contains_it() -> None:
    key = new_api_key()
    assert key.key_hash == hash_key(key.token)
    assert len(key.key_hash) == 32
    token = key.token.encode()
    assert key.key_hash != token
    assert token not in key.key_hash
    assert secret_of(key).encode() not in key.key_hash
    assert key.token not in key.key_hash.hex()
    assert secret_of(key) not in repr(key.key_hash)


# --- parsing ---------------------------------------------------------------------------------


def test_key_id_of_a_new_token_is_its_key_id() -> None:
    key = new_api_key()
    assert key_id_of(key.token) == key.key_id


@pytest.mark.parametrize(
    "token",
    [
        "",
        "tnt",
        "tnt_",
        "tnt__secret",
        "tnt_abcdefabcdef",
        "tnt_abcdefabcdef_",
        "tnt_abcdefabcde_secret",
        "tnt_abcdefabcdef0_secret",
        "xyz_abcdefabcdef_secret",
        "TNT_abcdefabcdef_secret",
        "Bearer tnt_abcdefabcdef_secret",
        "abcdefabcdef",
    ],
)
def test_key_id_of_a_malformed_token_is_none(token: str) -> None:
    assert key_id_of(token) is None


@PROPERTY
@given(st.text(max_size=80))
def test_key_id_of_never_raises_and_only_returns_twelve_characters(text: str) -> None:
    key_id = key_id_of(text)
    assert key_id is None or (len(key_id) == 12 and text.startswith(f"{KEY_PREFIX}_{key_id}_"))


# --- matching --------------------------------------------------------------------------------


def test_right_token_matches() -> None:
    key = new_api_key()
    assert key_matches(key.token, stored(key))


def test_each_of_several_active_keys_matches() -> None:
    keys = [new_api_key() for _ in range(3)]
    for key in keys:
        assert key_matches(key.token, stored(*keys))


def test_wrong_secret_with_the_right_key_id_does_not_match() -> None:
    key = new_api_key()
    forged = f"{KEY_PREFIX}_{key.key_id}_{secret_of(new_api_key())}"
    assert not key_matches(forged, stored(key))


def test_token_with_one_secret_character_changed_does_not_match() -> None:
    key = new_api_key()
    last = key.token[-1]
    tampered = key.token[:-1] + ("A" if last != "A" else "B")
    assert not key_matches(tampered, stored(key))
    assert not key_matches(key.token[:-1], stored(key))
    assert not key_matches(key.token + "A", stored(key))


def test_another_tenants_key_does_not_match() -> None:
    ours, theirs = new_api_key(), new_api_key()
    assert not key_matches(theirs.token, stored(ours))


def test_another_tenants_token_does_not_match_even_under_a_colliding_key_id() -> None:
    ours, theirs = new_api_key(), new_api_key()
    assert not key_matches(theirs.token, {theirs.key_id: ours.key_hash})


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_does_not_match(token: str | None) -> None:
    key = new_api_key()
    assert not key_matches(token, stored(key))
    assert not key_matches(token, {})


def test_token_for_an_unknown_key_id_does_not_match() -> None:
    key = new_api_key()
    unknown = f"{KEY_PREFIX}_{'0' * 12}_{secret_of(key)}"
    assert not key_matches(unknown, stored(key))


def test_revoked_key_absent_from_the_mapping_does_not_match() -> None:
    kept, revoked = new_api_key(), new_api_key()
    active = stored(kept, revoked)
    assert key_matches(revoked.token, active)
    del active[revoked.key_id]
    assert not key_matches(revoked.token, active)
    assert key_matches(kept.token, active)
    assert not key_matches(revoked.token, {})


def test_raw_stored_hash_presented_as_a_token_does_not_match() -> None:
    key = new_api_key()
    assert not key_matches(key.key_hash.hex(), stored(key))
    assert not key_matches(f"{KEY_PREFIX}_{key.key_id}_{key.key_hash.hex()}", stored(key))


def test_token_hashing_to_the_dummy_hash_does_not_match_an_empty_tenant() -> None:
    assert not key_matches("no such key", {})


@PROPERTY
@given(st.text(max_size=80))
def test_arbitrary_text_never_matches_a_real_key(text: str) -> None:
    key = new_api_key()
    assert not key_matches(text, stored(key))
    assert not key_matches(f"{KEY_PREFIX}_{key.key_id}_{text}", stored(key))
