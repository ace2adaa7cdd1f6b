"""The deployment files agree with the settings model and with the repository: every setting
reaches the containers and is explained in .env.example; the Dockerfile copies what exists,
runs as a non-root user and leaves test and dev files out; the Citus script registers the nodes
compose.yaml starts."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from service.paths import PROJECT_ROOT
from tenancy.settings import TenancySettings
from tests.support.compose import citus_layout

EMBEDDED_ONLY = {"TENANTRY_DATA_DIR", "TENANTRY_EMBEDDED_DATABASE"}
"""Settings of the embedded PostgreSQL, which a container never starts."""

SETTINGS = {f"TENANTRY_{name.upper()}" for name in TenancySettings.model_fields}


def read(name: str) -> str:
    return (PROJECT_ROOT / name).read_text()


def test_compose_passes_every_setting_to_the_containers() -> None:
    compose = yaml.safe_load(read("compose.yaml"))
    environment = compose["x-tenantry-env"]
    assert set(environment) == SETTINGS - EMBEDDED_ONLY - MIGRATE_ONLY
    assert compose["services"]["api"]["environment"] == environment
    migrate = compose["services"]["migrate"]["environment"]
    assert migrate == {**environment, **{name: migrate[name] for name in MIGRATE_ONLY}}


MIGRATE_ONLY = {"TENANTRY_BOOTSTRAP_DATABASE_URL"}
"""The superuser's URL: the migrate job's `roles setup` needs it, the API must never get it."""


def test_env_example_explains_every_setting_and_every_compose_variable() -> None:
    example = read(".env.example")
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert named >= SETTINGS
    compose_variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", read("compose.yaml")))
    assert named >= compose_variables


def test_empty_variables_mean_the_default(monkeypatch) -> None:
    """compose passes unset settings as empty strings; they must not override the defaults."""
    for name in SETTINGS - {"TENANTRY_DATABASE_URL"}:
        monkeypatch.setenv(name, "")
    settings = TenancySettings(_env_file=None)
    defaults = TenancySettings.model_construct(
        **{n: f.default for n, f in TenancySettings.model_fields.items()}
    ).model_dump(exclude={"database_url"})
    defaults["data_dir"] = PROJECT_ROOT / defaults["data_dir"]  # anchored to the project folder
    assert settings.model_dump(exclude={"database_url"}) == defaults
    assert settings.admin_token is None  # an empty token keeps /admin closed


def dockerfile_stages() -> list[list[str]]:
    lines = read("Dockerfile").replace("\\\n", " ").splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    stages: list[list[str]] = []
    for instruction in instructions:
        if instruction.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_is_multi_stage_and_runs_as_a_user() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    users = [i.split()[1] for i in runtime if i.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(i.startswith("COPY --from=builder /opt/venv") for i in runtime)
    assert not any(i.startswith("RUN pip") or " pip install" in i for i in runtime)
    assert runtime[-1].startswith("CMD ") and '"serve"' in runtime[-1]


def test_dockerfile_copies_only_what_the_build_context_holds() -> None:
    ignored = {line.strip() for line in read(".dockerignore").splitlines()}
    sources = [
        source.rstrip("/")
        for stage in dockerfile_stages()
        for instruction in stage
        if instruction.startswith("COPY ") and "--from=" not in instruction
        for source in instruction.split()[1:-1]
    ]
    assert {"tenancy", "service", "migrations", "alembic.ini", "pyproject.toml"} <= set(sources)
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source
        assert source not in ignored, source
    assert {"tests", ".venv", ".tenantry", ".env"} <= ignored


def runtime_copies() -> list[str]:
    """What the runtime stage copies from the build context (its COPY sources)."""
    return [
        source.rstrip("/")
        for instruction in dockerfile_stages()[-1]
        if instruction.startswith("COPY ") and "--from=" not in instruction
        for source in instruction.split()[1:-1]
    ]


def run_build_step(step: str, tree: Path) -> subprocess.CompletedProcess[str]:
    """A RUN step of the Dockerfile, in `tree` laid out as the image's /app, with this venv's
    python first on PATH (as /opt/venv/bin is in the image)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        ["bash", "-c", step], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def image_tree(tmp_path: Path) -> Path:
    """The runtime stage's /app: what it copies, as the repository holds it, no caches."""
    tree = tmp_path / "app"
    tree.mkdir(parents=True)
    for source in runtime_copies():
        origin = PROJECT_ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, tree / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, tree / source)
    return tree


def test_the_dockerfile_build_steps_that_run_the_project_run_against_this_code(
    tmp_path: Path,
) -> None:
    """The runtime stage's RUN steps that run the project's Python (precompiling, warming the
    CLI's caches) run here on a copy of what the image copies: a module moved or renamed fails
    this test, not `docker compose build`. Negative control: the same steps on a copy missing
    the module the cache step needs fail."""
    steps = [i[4:] for i in dockerfile_stages()[-1] if i.startswith("RUN ") and "python" in i]
    assert any("warm_caches" in step for step in steps)
    tree = image_tree(tmp_path)
    for step in steps:
        done = run_build_step(step, tree)
        assert done.returncode == 0, (step, done.stderr[-2000:])
    cached = {
        path.name.split("-")[1] for path in (tree / "migrations/__pycache__").glob("tenantry-*")
    }
    assert {"head", "heads"} <= cached
    broken = image_tree(tmp_path / "broken")
    (broken / "tenancy/lifecycle/schema_builders/head_ddl.py").unlink()
    assert any(run_build_step(step, broken).returncode != 0 for step in steps)


def test_citus_registration_names_the_nodes_compose_starts() -> None:
    layout = citus_layout(yaml.safe_load(read("compose.yaml")))
    script = read("deploy/citus/register-nodes.sql")
    calls = re.findall(r"^SELECT (citus_\w+)\('([^']+)', (\d+)\);", script, flags=re.MULTILINE)
    assert calls == [
        ("citus_set_coordinator_host", layout.coordinator, "5432"),
        *[("citus_add_node", worker, "5432") for worker in layout.workers],
    ]
