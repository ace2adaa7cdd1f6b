#!/usr/bin/env bash
# A local Citus cluster for tests and benchmarks: a coordinator and two workers, three PostgreSQL
# 15 instances on free ports of 127.0.0.1, run as the `postgres` OS user (when started as root).
#
#   deploy/citus/cluster.sh build    # build and install Citus from ../shared/citus unless installed
#   deploy/citus/cluster.sh start    # build if needed, initdb + start three nodes, print the env
#   deploy/citus/cluster.sh env      # the environment that points the tests at the running cluster
#   deploy/citus/cluster.sh status   # exit 0 when it runs
#   deploy/citus/cluster.sh stop     # stop the nodes and delete their data
#   deploy/citus/cluster.sh check    # exit 0 when Citus can be built or is installed, else say why
#
# `make citus-start` / `make citus-stop` / `make test-citus` wrap these. The data directories live
# in a temporary folder (mktemp, owned by postgres); .tenantry/citus.env in the project records it
# and the ports. Nothing here touches the machine's own PostgreSQL cluster (port 5432).
#
# Environment: CITUS_SOURCE_DIR (default ../shared/citus beside the project or, in a git worktree,
# beside its main checkout), PG_BIN (default
# /usr/lib/postgresql/15/bin).
set -euo pipefail

PROJECT="$(cd "$(dirname "$0")/../.." && pwd)"
# ../shared/citus beside the project; in a git worktree, beside the main checkout too.
if [ -z "${CITUS_SOURCE_DIR:-}" ]; then
    CITUS_SOURCE_DIR="$PROJECT/../shared/citus"
    common="$(git -C "$PROJECT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
    if [ ! -d "$CITUS_SOURCE_DIR" ] && [ -n "$common" ] && [ -d "$common/../../shared/citus" ]; then
        CITUS_SOURCE_DIR="$(cd "$common/../../shared/citus" && pwd)"
    fi
fi
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONFIG="$PG_BIN/pg_config"
STATE="$PROJECT/.tenantry/citus.env"
CITUS_VERSION="13.2.2"
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev
    libkrb5-dev make gcc patch)
NODES=(coordinator worker1 worker2)

say() { echo "citus: $*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Commands that touch the data directories run as postgres when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

installed() {
    [ -x "$PG_CONFIG" ] || return 1
    [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] &&
        [ -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ]
}

# Why Citus cannot be had on this machine, or nothing (exit 0) when it can.
check() {
    if installed; then return 0; fi
    local tarball="$CITUS_SOURCE_DIR/citus-$CITUS_VERSION.tar.gz"
    [ -f "$tarball" ] || { echo "no Citus source at $tarball"; return 1; }
    if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
        echo "building Citus installs into PostgreSQL's folders: needs root or passwordless sudo"
        return 1
    fi
    if ! command -v apt-get >/dev/null && [ ! -x "$PG_CONFIG" ]; then
        echo "no PostgreSQL 15 server headers ($PG_CONFIG) and no apt-get to install them"
        return 1
    fi
    return 0
}

install_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
    if installed; then say "Citus is installed ($("$PG_CONFIG" --pkglibdir)/citus.so)"; return 0; fi
    local why
    why="$(check)" || die "cannot build: $why"
    install_packages
    local work
    work="$(mktemp -d /tmp/tenantry-citus-build.XXXXXX)"
    say "building Citus $CITUS_VERSION in $work (about 2 minutes on 2 cores)"
    local started=$SECONDS
    tar xzf "$CITUS_SOURCE_DIR/citus-$CITUS_VERSION.tar.gz" -C "$work"
    (
        cd "$work/citus-$CITUS_VERSION"
        patch -p1 -s <"$CITUS_SOURCE_DIR/pg15-have_createdb_privilege.patch"
        ./configure -q PG_CONFIG="$PG_CONFIG" >"$work/configure.log" 2>&1 ||
            { tail -20 "$work/configure.log" >&2; exit 1; }
        make -s -j"$(nproc)" with_llvm=no >"$work/make.log" 2>&1 ||
            { tail -30 "$work/make.log" >&2; exit 1; }
        as_root make -s install with_llvm=no >>"$work/make.log" 2>&1 ||
            { tail -30 "$work/make.log" >&2; exit 1; }
    )
    rm -rf "$work"
    say "built and installed in $((SECONDS - started)) s"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

print_env() {
    # shellcheck disable=SC1090
    source "$STATE"
    echo "TENANTRY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:${CITUS_PORTS[0]}/postgres"
    echo "TENANTRY_CITUS_WORKERS=127.0.0.1:${CITUS_PORTS[1]},127.0.0.1:${CITUS_PORTS[2]}"
}

running() {
    [ -f "$STATE" ] || return 1
    # shellcheck disable=SC1090
    source "$STATE"
    for i in 0 1 2; do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "${CITUS_PORTS[$i]}" || return 1
    done
}

start() {
    if running; then say "already running"; print_env; return 0; fi
    [ -f "$STATE" ] && stop
    build
    local started=$SECONDS
    local base
    base="$(mktemp -d /tmp/tenantry-citus.XXXXXX)"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$base"; fi
    local ports=()
    for _ in "${NODES[@]}"; do
        local port
        port="$(free_port)"
        while [[ " ${ports[*]} " == *" $port "* ]]; do port="$(free_port)"; done
        ports+=("$port")
    done
    mkdir -p "$(dirname "$STATE")"
    {
        echo "CITUS_BASE=$base"
        echo "CITUS_PORTS=(${ports[*]})"
    } >"$STATE"
    for i in 0 1 2; do
        local data="$base/${NODES[$i]}"
        as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
            >/dev/null
        # A throwaway cluster: fsync off; wal_level=logical for citus_schema_move; connections
        # for the suite's pools plus the coordinator's connections to each worker. Never
        # synchronous_commit=off: a schema move then loses writes acknowledged just before its
        # end (Citus waits for pg_current_wal_lsn(), which lags asynchronous commits).
        as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
shared_preload_libraries = 'citus'
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base'
max_connections = 300
wal_level = logical
fsync = off
full_page_writes = off
citus.enable_schema_based_sharding = on
EOF
        as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$base/${NODES[$i]}.log" -w -t 60 start >/dev/null ||
            { tail -20 "$base/${NODES[$i]}.log" >&2; die "${NODES[$i]} did not start"; }
    done
    say "coordinator 127.0.0.1:${ports[0]}, workers 127.0.0.1:${ports[1]} and :${ports[2]}" \
        "(data in $base; started in $((SECONDS - started)) s)"
    print_env
}

stop() {
    [ -f "$STATE" ] || { say "not running"; return 0; }
    # shellcheck disable=SC1090
    source "$STATE"
    for node in "${NODES[@]}"; do
        if [ -f "$CITUS_BASE/$node/postmaster.pid" ]; then
            as_pg "$PG_BIN/pg_ctl" -D "$CITUS_BASE/$node" -m immediate -w stop >/dev/null || true
        fi
    done
    case "$CITUS_BASE" in /tmp/tenantry-citus.*) rm -rf "$CITUS_BASE" ;; esac
    rm -f "$STATE"
    say "stopped"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    env) running || die "not running (deploy/citus/cluster.sh start)"; print_env ;;
    status) running && say "running: $(print_env | tr '\n' ' ')" ;;
    check) check ;;
    *) die "usage: $0 build|start|env|status|stop|check" ;;
esac
