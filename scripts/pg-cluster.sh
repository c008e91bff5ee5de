#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the team-mode tests (make test-team, CI): Debian's server binaries, a
# fresh data directory in a temporary folder, run by an unprivileged user, on 127.0.0.1 and a free port.
#
#   scripts/pg-cluster.sh run -- COMMAND...   start a cluster, run COMMAND with it, stop and delete it
#   scripts/pg-cluster.sh start DIR           start one in DIR (prints the variables to export)
#   scripts/pg-cluster.sh stop DIR            stop it and delete DIR
#
# COMMAND sees RUNBOOK_DESK_TEST_PG (a superuser URL without a password) and PGPASSFILE (the password, in
# libpq's .pgpass format): the password is never on a command line or in a URL. Passwords are checked
# (scram-sha-256 on TCP), so the tests' analyst logins authenticate the way a real server makes them.
# fsync is off: the cluster lives for one test run and is deleted after it.
set -euo pipefail

bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$newest" ] || [ ! -x "$newest/initdb" ]; then
    echo "pg-cluster: no PostgreSQL server binaries (initdb); run: scripts/install-system-deps.sh team" >&2
    exit 1
  fi
  echo "$newest"
}

# initdb and postgres refuse to run as root: as root, run them as the Debian package's `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1 bin port password
  bin=$(bindir)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf '%s\n' "$password" >"$dir/superuser.pw"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/superuser.pw"
  as_owner "$bin/initdb" -D "$dir/data" -U rd_super --pwfile="$dir/superuser.pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  rm -f "$dir/superuser.pw"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=200" >/dev/null
  # libpq's password file: host:port:database:user:password, readable by its owner only.
  printf '127.0.0.1:%s:*:rd_super:%s\n' "$port" "$password" >"$dir/pgpass"
  chmod 600 "$dir/pgpass"
  echo "export RUNBOOK_DESK_TEST_PG=postgresql://rd_super@127.0.0.1:$port/postgres"
  echo "export PGPASSFILE=$dir/pgpass"
}

stop() {
  local dir=$1
  if [ -d "$dir/data" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    dir=$(mktemp -d "${TMPDIR:-/tmp}/runbook-desk-pg.XXXXXX")
    trap 'stop "$dir"' EXIT
    eval "$(start "$dir")"
    "$@"
    ;;
  *)
    echo "usage: $0 run -- COMMAND... | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
