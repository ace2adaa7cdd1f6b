"""compose.yaml is checked against the Compose specification's JSON schema (no Docker engine
runs here, so a typo would otherwise land unseen)."""

import json

import jsonschema
import yaml

from service.paths import PROJECT_ROOT

SCHEMA = PROJECT_ROOT / "tests" / "data" / "compose-spec.json"


def load_compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(load_compose(), schema)


def test_compose_schema_check_catches_a_typo() -> None:
    compose = load_compose()
    compose["services"]["api"]["depends_onn"] = compose["services"]["api"].pop("depends_on")
    schema = json.loads(SCHEMA.read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(compose))


def test_api_starts_after_a_successful_migration() -> None:
    services = load_compose()["services"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["image"].startswith("postgres:16")
