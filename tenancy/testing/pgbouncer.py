"""A PgBouncer of the tests' own: transaction pooling on a free loopback port, in front of the
server under test (TCP, or the embedded server's Unix socket)."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
START_TIMEOUT = 10

CONFIG = """\
[databases]
{database} = host={host} port={port} dbname={database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
server_reset_query = DEALLOCATE ALL
server_reset_query_always = 1
log_connections = 0
log_disconnections = 0
"""
"""What a deployment needs, too (README): transaction pooling; PgBouncer < 1.21 keeps no track of
prepared statements, so those a client leaves behind are dropped after every transaction."""


@dataclass(frozen=True)
class Bouncer:
    url: str
    """The same URL as the server's, pointed at PgBouncer."""
    version: str


def installed() -> bool:
    return Path(PGBOUNCER).exists()


def pgbouncer_version() -> str:
    """'PgBouncer 1.18.0'."""
    out = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


@contextmanager
def running_pgbouncer(server_url: str, users: list[str], pool_size: int = 2) -> Iterator[Bouncer]:
    """PgBouncer in front of server_url's database, letting `users` in (trust, loopback only)."""
    url = make_url(server_url)
    socket_dir = url.query.get("host")
    host = socket_dir if isinstance(socket_dir, str) else url.host or "127.0.0.1"
    listen_port = _free_port()
    with tempfile.TemporaryDirectory(prefix="tenantry-pgbouncer-") as folder:
        config = Path(folder) / "pgbouncer.ini"
        auth_file = Path(folder) / "users.txt"
        auth_file.write_text("".join(f'"{user}" ""\n' for user in users))
        config.write_text(
            CONFIG.format(
                database=url.database,
                host=host,
                port=url.port or 5432,
                listen_port=listen_port,
                auth_file=auth_file,
                pool_size=pool_size,
            )
        )
        for path, mode in ((Path(folder), 0o755), (config, 0o644), (auth_file, 0o644)):
            path.chmod(mode)
        log_path = Path(folder) / "pgbouncer.log"
        with log_path.open("w") as log:  # opened here: PgBouncer may run as another user
            process = subprocess.Popen(
                [PGBOUNCER, str(config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                **_unprivileged_user(host),
            )
        try:
            _wait_until_listening(process, listen_port, log_path)
            through = url.set(host="127.0.0.1", port=listen_port).difference_update_query(["host"])
            yield Bouncer(through.render_as_string(hide_password=False), pgbouncer_version())
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _unprivileged_user(host: str) -> dict:
    """PgBouncer refuses to run as root: then run it as the owner of the server's socket folder
    (the embedded server's own user), or as nobody for a TCP server."""
    if os.geteuid() != 0:
        return {}
    uid = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
    user = pwd.getpwuid(uid)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {START_TIMEOUT}s")
