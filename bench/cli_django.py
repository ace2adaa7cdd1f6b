"""django-tenants' own CLI beside Tenantry's: a minimal project, written to a temporary folder.

The same three tenant tables as Tenantry's models (songs, todos, users) as a tenant app, a
`customers` app with the tenant and domain models, django-tenants' PostgreSQL backend. It runs
under an interpreter that has django-tenants (never a dependency of this project): pass
`--django-python`, e.g. a throwaway venv made with `pip install django-tenants psycopg2-binary`.
"""

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

FILES = {
    "manage.py": """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
""",
    "djproj/__init__.py": "",
    "djproj/urls.py": "urlpatterns = []\n",
    "djproj/settings.py": """
import os
SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": {
    "ENGINE": "django_tenants.postgresql_backend",
    "NAME": os.environ["DJBENCH_NAME"], "USER": os.environ["DJBENCH_USER"],
    "PASSWORD": os.environ.get("DJBENCH_PASSWORD", ""), "HOST": os.environ["DJBENCH_HOST"],
    "PORT": os.environ["DJBENCH_PORT"],
}}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
SHARED_APPS = ["django_tenants", "django.contrib.contenttypes", "customers"]
TENANT_APPS = ["todos"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIDDLEWARE = []
ROOT_URLCONF = "djproj.urls"
""",
    "customers/__init__.py": "",
    "customers/models.py": """
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    name = models.CharField(max_length=100)
    auto_create_schema = True


class Domain(DomainMixin):
    pass
""",
    "todos/__init__.py": "",
    "todos/models.py": """
from django.db import models


class Song(models.Model):
    name = models.CharField(max_length=200)
    artist = models.CharField(max_length=200)


class Todo(models.Model):
    content = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True)


class User(models.Model):
    email = models.CharField(max_length=254, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
""",
    # `create_tenant`'s work measured inside one warm Django process, as Tenantry's is
    "work.py": """
import json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")
import django
django.setup()
from django.core.management import call_command
seconds = []
for slug in sys.argv[1:]:
    started = time.perf_counter()
    call_command("create_tenant", schema_name=slug, name=slug, domain_domain=f"{slug}.localhost",
                 domain_is_primary="True", interactive=False, verbosity=0)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
""",
}


@dataclass(frozen=True)
class DjangoProject:
    python: str
    folder: Path
    env: Mapping[str, str]

    def manage(self, *args: str) -> list[str]:
        return [self.python, str(self.folder / "manage.py"), *args]

    def create_tenant(self, slug: str) -> list[str]:
        return self.manage(
            "create_tenant",
            f"--schema_name={slug}",
            f"--name={slug}",
            f"--domain-domain={slug}.localhost",
            "--domain-is_primary=True",
            "--noinput",
            "--verbosity=0",
        )

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv, cwd=self.folder, env=dict(self.env), capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])}: {result.stderr}")
        return result

    def work_seconds(self, slugs: list[str]) -> list[float]:
        """create_tenant for each slug inside one warm process: the work without the start-up."""
        result = self.run([self.python, str(self.folder / "work.py"), *slugs])
        return json.loads(result.stdout.splitlines()[-1])

    def version(self) -> str:
        return self.run(
            [
                self.python,
                "-c",
                "import django_tenants, importlib.metadata as m;"
                "print(m.version('django-tenants'), m.version('django'))",
            ]
        ).stdout.strip()


def make_project(python: str, folder: Path, database_url: str) -> DjangoProject:
    """Write the project, create its migrations and the shared schema in `database_url`."""
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    url = make_url(database_url)
    env = {
        **os.environ,
        "DJBENCH_NAME": url.database or "",
        "DJBENCH_USER": url.username or "",
        "DJBENCH_PASSWORD": url.password or "",
        "DJBENCH_HOST": url.host or "127.0.0.1",
        "DJBENCH_PORT": str(url.port or 5432),
    }
    project = DjangoProject(python, folder, env)
    project.run(project.manage("makemigrations", "customers", "todos", "--verbosity=0"))
    project.run(project.manage("migrate_schemas", "--shared", "--verbosity=0"))
    return project
