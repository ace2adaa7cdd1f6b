"""Archive and import-staging schema names: outside the tenant namespace, unique, quotable."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy.naming import (
    MAX_IDENTIFIER,
    RESERVED_SLUGS,
    InvalidSchemaName,
    archive_schema,
    checked_archive_schema,
    checked_data_schema,
    checked_schema,
    checked_staging_schema,
    is_archive_schema,
    is_tenant_schema,
    quote_archive_schema,
    quote_schema,
    quote_staging_schema,
    slug_of_schema,
    staging_schema,
    tenant_schema,
)

PROPERTY = settings(max_examples=300, deadline=None)
slugs = st.from_regex(r"[a-z][a-z0-9-]{1,39}", fullmatch=True).filter(
    lambda s: s not in RESERVED_SLUGS
)
ids = st.integers(min_value=1, max_value=2**63 - 1)


def test_archive_name_is_prefix_id_and_slug() -> None:
    assert archive_schema(7, "acme-co") == "archived_7_acme_co"
    assert quote_archive_schema("archived_7_acme_co") == '"archived_7_acme_co"'


@PROPERTY
@given(ids, slugs)
def test_every_archive_name_fits_is_checked_and_is_no_tenant_schema(tenant_id, slug) -> None:
    name = archive_schema(tenant_id, slug)
    assert len(name) <= MAX_IDENTIFIER
    assert checked_archive_schema(name) == name == checked_data_schema(name)
    assert name.startswith(f"archived_{tenant_id}_")
    assert not is_tenant_schema(name)
    with pytest.raises(InvalidSchemaName):
        quote_schema(name)


@PROPERTY
@given(ids, ids, slugs, slugs)
def test_archive_names_of_different_ids_never_collide(one, two, slug_one, slug_two) -> None:
    if one != two:
        assert archive_schema(one, slug_one) != archive_schema(two, slug_two)


@PROPERTY
@given(slugs)
def test_slug_of_schema_inverts_tenant_schema(slug) -> None:
    assert slug_of_schema(tenant_schema(slug)) == slug


@pytest.mark.parametrize(
    "name",
    [
        "tenant_acme",
        "archived_0_acme",
        "archived_x_acme",
        "archived_7_",
        "archived_7_Acme",
        'archived_7_acme"; DROP SCHEMA public; --',
        "archived_7_" + "a" * 53,
        "public",
        "importing_0123456789abcdef",
    ],
)
def test_non_archive_names_are_refused(name: str) -> None:
    assert not is_archive_schema(name)
    with pytest.raises(InvalidSchemaName):
        quote_archive_schema(name)


def test_archive_of_a_bad_slug_or_id_is_refused() -> None:
    with pytest.raises(ValueError):
        archive_schema(0, "acme")
    with pytest.raises(ValueError):
        archive_schema(1, "Acme")


def test_staging_names_are_random_and_only_they_pass_the_staging_rule() -> None:
    names = {staging_schema() for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert checked_staging_schema(name) == name
        assert quote_staging_schema(name) == f'"{name}"'
        with pytest.raises(InvalidSchemaName):
            checked_schema(name)
        with pytest.raises(InvalidSchemaName):
            checked_data_schema(name)
    for bad in ("tenant_acme", "importing_", "importing_0123456789ABCDEF", "archived_1_a"):
        with pytest.raises(InvalidSchemaName):
            quote_staging_schema(bad)
