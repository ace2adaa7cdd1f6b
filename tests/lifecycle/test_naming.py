"""Slugs and schema names: only well-formed, unreserved slugs ever become tenant schemas."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy.naming import (
    REGISTRY_SCHEMA,
    RESERVED_SLUGS,
    TENANT_SCHEMA_PREFIX,
    InvalidSchemaName,
    InvalidSlug,
    checked_schema,
    is_tenant_schema,
    is_valid_slug,
    quote_schema,
    tenant_schema,
    validate_slug,
)

PROPERTY = settings(max_examples=300, deadline=None)

SLUG_RULE = r"[a-z][a-z0-9-]{1,39}"
SLUG_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz")
SLUG_REST = SLUG_FIRST | frozenset("0123456789-")

slug_shaped = st.from_regex(SLUG_RULE, fullmatch=True)
valid_slugs = slug_shaped.filter(lambda s: s not in RESERVED_SLUGS)
# Arbitrary text, plus text biased towards the slug alphabet so that near-misses are common.
any_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet="abcz09-_ A\n\x00", max_size=45),
    slug_shaped,
    st.sampled_from(sorted(RESERVED_SLUGS)),
)

VALID_SLUGS = [
    "acme",
    "ab",
    "a1",
    "acme-corp",
    "a-",
    "a--b",
    "x" + "9" * 39,
    "a" * 40,
    "pg-tenant",
    "publicity",
    "tenant-1",
]

INVALID_SLUGS = [
    pytest.param("Acme", id="uppercase"),
    pytest.param("ACME", id="all-uppercase"),
    pytest.param("1acme", id="leading-digit"),
    pytest.param("-acme", id="leading-dash"),
    pytest.param("acme_corp", id="underscore"),
    pytest.param("a", id="one-char"),
    pytest.param("a" * 41, id="41-chars"),
    pytest.param("", id="empty"),
    pytest.param(" ", id="space"),
    pytest.param("acme corp", id="inner-space"),
    pytest.param(" acme", id="leading-space"),
    pytest.param("acme ", id="trailing-space"),
    pytest.param("acme\n", id="trailing-newline"),
    pytest.param("acme\t", id="trailing-tab"),
    pytest.param("\nacme", id="leading-newline"),
    pytest.param("ac\x00me", id="nul-byte"),
    pytest.param("acme\x00", id="trailing-nul"),
    pytest.param("\u0430cme", id="cyrillic-a"),
    pytest.param("acm\u0435", id="cyrillic-e"),
    pytest.param("\uff41\uff43\uff4d\uff45", id="fullwidth"),
    pytest.param("acme\u200b", id="zero-width-space"),
    pytest.param("\u212acme", id="kelvin-sign"),
    pytest.param('"; DROP SCHEMA public; --', id="sql-injection"),
    pytest.param('acme"', id="double-quote"),
    pytest.param("acme;", id="semicolon"),
    pytest.param("../etc", id="path-traversal"),
    pytest.param("acme.corp", id="dot"),
    pytest.param("public", id="public"),
    pytest.param("pg_catalog", id="pg_catalog"),
    pytest.param("information_schema", id="information_schema"),
    pytest.param("tenantry", id="tenantry"),
]


# --- slugs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", VALID_SLUGS)
def test_well_formed_unreserved_slug_is_accepted_unchanged(slug: str) -> None:
    assert is_valid_slug(slug)
    assert validate_slug(slug) == slug


@pytest.mark.parametrize("slug", INVALID_SLUGS)
def test_malformed_or_reserved_slug_is_refused(slug: str) -> None:
    assert not is_valid_slug(slug)
    with pytest.raises(InvalidSlug):
        validate_slug(slug)


@pytest.mark.parametrize("slug", INVALID_SLUGS)
def test_refused_slug_never_becomes_a_schema_name(slug: str) -> None:
    with pytest.raises(InvalidSlug):
        tenant_schema(slug)


@pytest.mark.parametrize("slug", sorted(RESERVED_SLUGS))
def test_every_reserved_slug_is_refused_by_validate_slug(slug: str) -> None:
    assert not is_valid_slug(slug)
    with pytest.raises(InvalidSlug, match="reserved"):
        validate_slug(slug)
    with pytest.raises(InvalidSlug):
        tenant_schema(slug)


def test_registry_schema_name_is_a_reserved_slug() -> None:
    assert REGISTRY_SCHEMA in RESERVED_SLUGS


def test_invalid_slug_error_message_truncates_long_input() -> None:
    with pytest.raises(InvalidSlug) as caught:
        validate_slug("X" * 10_000)
    assert len(str(caught.value)) < 300


def _independent_slug_rule(text: str) -> bool:
    """The slug rule restated without the module's regex: an ASCII character-by-character check."""
    return (
        2 <= len(text) <= 40
        and text[0] in SLUG_FIRST
        and all(c in SLUG_REST for c in text[1:])
        and text not in RESERVED_SLUGS
    )


@PROPERTY
@given(any_text)
def test_text_is_a_valid_slug_only_if_it_matches_the_rule_and_is_not_reserved(text: str) -> None:
    expected = re.fullmatch(SLUG_RULE, text) is not None and text not in RESERVED_SLUGS
    assert expected == _independent_slug_rule(text)
    assert is_valid_slug(text) == expected
    if expected:
        assert validate_slug(text) == text
    else:
        with pytest.raises(InvalidSlug):
            validate_slug(text)


# --- tenant schemas --------------------------------------------------------------------------


def test_schema_of_a_slug_replaces_dashes_with_underscores() -> None:
    assert tenant_schema("acme") == "tenant_acme"
    assert tenant_schema("acme-corp-2") == "tenant_acme_corp_2"


@PROPERTY
@given(valid_slugs)
def test_schema_of_any_valid_slug_is_a_tenant_schema(slug: str) -> None:
    schema = tenant_schema(slug)
    assert is_tenant_schema(schema)
    assert checked_schema(schema) == schema
    assert schema.startswith(TENANT_SCHEMA_PREFIX)
    assert len(schema.encode()) <= 63  # PostgreSQL's NAMEDATALEN - 1
    assert schema not in {"public", "information_schema", REGISTRY_SCHEMA}
    assert not schema.startswith("pg_")
    assert quote_schema(schema) == f'"{schema}"'


@PROPERTY
@given(valid_slugs, valid_slugs)
def test_different_valid_slugs_get_different_schemas(first: str, second: str) -> None:
    if first != second:
        assert tenant_schema(first) != tenant_schema(second)
    else:
        assert tenant_schema(first) == tenant_schema(second)


def test_dash_and_underscore_cannot_collide_because_underscore_is_not_a_slug_character() -> None:
    assert tenant_schema("acme-corp") == "tenant_acme_corp"
    assert not is_valid_slug("acme_corp")


def test_longest_slug_gives_a_schema_within_postgres_identifier_limit() -> None:
    schema = tenant_schema("a" * 40)
    assert len(schema.encode()) == len(TENANT_SCHEMA_PREFIX) + 40 <= 63


# --- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tenant_acme", "tenant_acme_corp", "tenant_a1", "tenant_x9_"])
def test_quote_schema_wraps_a_tenant_schema_in_double_quotes(name: str) -> None:
    assert quote_schema(name) == f'"{name}"'
    assert checked_schema(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "public",
        "pg_catalog",
        "pg_toast",
        "information_schema",
        "tenantry",
        "tenant",
        "tenant_",
        "tenant_a",
        "tenant_1acme",
        "tenant__acme",
        "tenant_acme-corp",
        'tenant_x"; drop',
        'tenant_x"',
        "tenant_x;",
        "tenant_acme ",
        "tenant_acme\n",
        "tenant_acme\x00",
        " tenant_acme",
        "TENANT_ACME",
        "tenant_ACME",
        "Tenant_acme",
        "tenant_\u0430cme",
        "tenant_" + "a" * 41,
        '"tenant_acme"',
        "tenant_acme.public",
        "public.tenant_acme",
    ],
)
def test_quote_schema_refuses_anything_outside_the_tenant_namespace(name: str) -> None:
    assert not is_tenant_schema(name)
    with pytest.raises(InvalidSchemaName):
        checked_schema(name)
    with pytest.raises(InvalidSchemaName):
        quote_schema(name)


@PROPERTY
@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(r"tenant_[\s\S]{0,45}", fullmatch=True),
        st.from_regex(r"tenant_[a-zA-Z0-9_\"; \n-]{0,45}", fullmatch=True),
        slug_shaped.map(lambda s: TENANT_SCHEMA_PREFIX + s),
    )
)
def test_anything_quote_schema_accepts_is_inert_inside_double_quotes(name: str) -> None:
    try:
        quoted = quote_schema(name)
    except InvalidSchemaName:
        return
    assert quoted == f'"{name}"'
    assert name.startswith(TENANT_SCHEMA_PREFIX)
    assert name.isascii()
    assert len(name.encode()) <= 63
    assert not any(c in name for c in "\"';.\\\x00-")
    assert not any(c.isspace() for c in name)
    assert name == name.lower()
