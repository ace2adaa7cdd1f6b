"""compose.yaml is checked against the Compose specification's JSON schema (no Docker engine
runs here, so a typo would otherwise land unseen), and its `citus` profile against what the
Tenantry services need from it: a coordinator they talk to and two workers behind it."""

import json
import re
from urllib.parse import urlsplit

import jsonschema

from service.paths import PROJECT_ROOT
from tenancy.settings import TenancySettings
from tests.support.compose import (
    citus_layout,
    documented_environment,
    interpolate,
    load_compose,
    server_settings,
)

SCHEMA = PROJECT_ROOT / "tests" / "data" / "compose-spec.json"
DATABASE_URLS = (
    "TENANTRY_DATABASE_URL",
    "TENANTRY_LISTEN_DATABASE_URL",
    "TENANTRY_OWNER_DATABASE_URL",
)


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


def test_interpolation_follows_compose_defaults() -> None:
    """The helper the next tests read the file with: nested defaults, empty means unset, `$$`."""
    text = "${A:-${B:-b}}/${C}/$${D}"
    assert interpolate(text, {}) == "b//${D}"
    assert interpolate(text, {"A": "", "B": "x", "C": "c"}) == "x/c/${D}"
    assert interpolate(text, {"A": "a"}) == "a//${D}"


def test_citus_profile_is_a_coordinator_and_two_workers() -> None:
    compose = load_compose()
    layout = citus_layout(compose)
    services = compose["services"]
    assert layout.coordinator == "citus-coordinator"
    assert layout.workers == ("citus-worker-1", "citus-worker-2")
    nodes = [services[name] for name in (layout.coordinator, *layout.workers)]
    volumes = [volume for node in nodes for volume in node["volumes"]]
    assert len(set(volumes)) == 3  # a data volume of its own for each node
    for node in nodes:
        image = interpolate(node["image"], {})
        repository, _, tag = image.partition(":")
        assert repository == "citusdata/citus"
        # 12.0 brought schema-based sharding; 13.1 propagates column GRANTs (the registry's).
        assert tuple(int(part) for part in tag.split(".")[:2]) >= (13, 1), image
        assert node["healthcheck"]["test"][0] == "CMD-SHELL"


def test_schema_based_sharding_is_on_where_schemas_are_created() -> None:
    compose = load_compose()
    coordinator = compose["services"][citus_layout(compose).coordinator]
    settings = server_settings(coordinator)
    assert settings["citus.enable_schema_based_sharding"] == "on"
    assert settings["wal_level"] == "logical"  # schema moves without blocking writes


def test_citus_nodes_are_registered_before_the_migrations() -> None:
    compose = load_compose()
    layout = citus_layout(compose)
    services = compose["services"]
    init = services[layout.init]
    for node in (layout.coordinator, *layout.workers):
        assert init["depends_on"][node]["condition"] == "service_healthy"
    waits_for_init = services["migrate"]["depends_on"][layout.init]
    assert waits_for_init == {"condition": "service_completed_successfully", "required": False}


def test_the_app_talks_to_the_coordinator_under_the_citus_profile() -> None:
    compose = load_compose()
    environment = documented_environment("citus")
    assert environment["COMPOSE_PROFILES"] == "citus"
    coordinator = citus_layout(compose).coordinator
    for name in DATABASE_URLS:
        url = urlsplit(interpolate(compose["x-tenantry-env"][name], environment))
        assert (url.hostname, url.port) == (coordinator, 5432), name


def test_without_the_profile_everything_still_talks_to_postgres() -> None:
    compose = load_compose()
    for name in DATABASE_URLS:
        url = urlsplit(interpolate(compose["x-tenantry-env"][name], {}))
        assert (url.hostname, url.port) == ("postgres", 5432), name
    assert interpolate(compose["services"]["pgbouncer"]["environment"]["DB_HOST"], {}) == (
        "postgres"
    )


def test_default_services_never_require_a_profiled_one() -> None:
    """`docker compose up` without profiles must not wait for a service it does not start."""
    services = load_compose()["services"]
    profiled = {name for name, service in services.items() if service.get("profiles")}
    for name, service in services.items():
        if service.get("profiles"):
            continue
        for dependency, condition in service.get("depends_on", {}).items():
            if dependency in profiled:
                assert condition.get("required") is False, f"{name} -> {dependency}"


def test_citus_init_runs_the_registration_script_from_the_repository() -> None:
    compose = load_compose()
    init = compose["services"][citus_layout(compose).init]
    script = init["command"][init["command"].index("-f") + 1]
    mounts = [volume.split(":") for volume in init["volumes"]]
    host, container = next((h, c) for h, c, *_ in mounts if script.startswith(c + "/"))
    assert (PROJECT_ROOT / host / script.removeprefix(container + "/")).is_file()
    assert re.fullmatch(r"\./deploy/citus", host)


def test_the_citus_profile_sets_what_the_ci_cluster_sets() -> None:
    """compose's nodes and deploy/citus/cluster.sh (the cluster CI runs the suite on) agree on
    every Citus-relevant server setting and on the Citus release line."""
    script = (PROJECT_ROOT / "deploy" / "citus" / "cluster.sh").read_text()
    ci = dict(re.findall(r"^(citus\.\w+|wal_level) = (\S+)$", script, flags=re.MULTILINE))
    assert ci == {"wal_level": "logical", "citus.enable_schema_based_sharding": "on"}
    assert "synchronous_commit = off" not in script  # loses writes in a schema move
    (ci_version,) = re.findall(r'^CITUS_VERSION="([\d.]+)"$', script, flags=re.MULTILINE)
    compose = load_compose()
    layout = citus_layout(compose)
    for name in (layout.coordinator, *layout.workers):
        node = compose["services"][name]
        settings = server_settings(node)
        assert {key: settings.get(key) for key in ci} == ci, name
        assert "synchronous_commit" not in settings, name
        tag = interpolate(node["image"], {}).partition(":")[2]
        assert tag.split(".")[:2] == ci_version.split(".")[:2], name


def test_compose_waits_longer_than_the_shutdown_timeout_before_it_kills_the_api() -> None:
    """Docker kills the API stop_grace_period after SIGTERM; the requests still running at
    TENANTRY_SHUTDOWN_TIMEOUT are answered and the pool closed after that, so the kill must
    come well later. As configured: with no .env, compose passes the setting empty (its
    default) and the grace period's own default."""
    api = load_compose()["services"]["api"]
    assert interpolate(api["environment"]["TENANTRY_SHUTDOWN_TIMEOUT"], {}) == ""
    grace = interpolate(api["stop_grace_period"], {})
    timeout = TenancySettings.model_fields["shutdown_timeout"].default
    assert re.fullmatch(r"\d+s", grace) and int(grace[:-1]) >= timeout + 10, grace
