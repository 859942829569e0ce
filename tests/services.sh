#!/usr/bin/env bash
# Run a command with real Redis and PostgreSQL servers on 127.0.0.1, started for it and stopped after.
#   bash tests/services.sh python -m pytest
# Installs what is missing (redis-server, postgresql, chromium) with apt-get when run as root.
# The command sees SEAMLINE_TEST_REDIS_URL, SEAMLINE_TEST_DATABASE_URL and SEAMLINE_REQUIRE_SERVICES=1.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -n "$(pg_bin)" ] || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then missing+=(postgresql); fi  # its server runs as postgres
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "services: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "services: missing ${missing[*]}; install them: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
run_dir=$(mktemp -d /tmp/seamline-services.XXXXXX)
chmod 755 "$run_dir"
redis_port=$(free_port)
pg_port=$(free_port)
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi

cleanup() {
  "${as_pg[@]}" "$(pg_bin)/pg_ctl" -D "$run_dir/pg" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$run_dir/redis.pid" ] && kill "$(cat "$run_dir/redis.pid")" 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
  --pidfile "$run_dir/redis.pid" --dir "$run_dir" --logfile "$run_dir/redis.log"

mkdir -p "$run_dir/pg"
[ "$(id -u)" = 0 ] && chown postgres "$run_dir/pg"
"${as_pg[@]}" "$(pg_bin)/initdb" -D "$run_dir/pg" -A trust -U seamline -E UTF8 >/dev/null
"${as_pg[@]}" "$(pg_bin)/pg_ctl" -D "$run_dir/pg" -l "$run_dir/pg/server.log" -w start \
  -o "-p $pg_port -k $run_dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null

for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

export SEAMLINE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export SEAMLINE_TEST_DATABASE_URL="postgresql+asyncpg://seamline@127.0.0.1:$pg_port/postgres"
export SEAMLINE_REQUIRE_SERVICES=1
echo "services: redis on $redis_port, postgresql on $pg_port" >&2
set +e
"$@"
status=$?
exit $status
