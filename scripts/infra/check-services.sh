#!/usr/bin/env bash
# Checks the preinstalled services the real suites and the staging mode use — PostgreSQL on
# 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (docs/infrastructure.md) — and starts the one that does
# not answer, with the machine's own start command, then waits (bounded) until it does. Idempotent:
# a service that answers is left alone. Prints one status line per service. Exit status non-zero
# when a service is still not usable at the end (it installs nothing: these come with the machine).
set -euo pipefail

HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
WAIT_SECONDS_MAX=30

log() { echo "infra/$1: ${*:2}"; }

pg_answers() { timeout 5 pg_isready -q -h "$HOST" -p "$PG_PORT" -d postgres >/dev/null 2>&1; }

pg_summary() {
  timeout 5 psql -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -XAtc 'SHOW server_version' 2>/dev/null |
    sed 's/ .*//' || echo '?'
}

redis_answers() { [[ "$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_summary() {
  timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" info server 2>/dev/null |
    sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p' || echo '?'
}

start_pg() {
  local version
  # One cluster per installed major version; the machine has exactly one.
  version="$(ls /etc/postgresql | sort -V | tail -n1)"
  [[ -n "$version" ]] || { log postgresql "FAILED: no cluster under /etc/postgresql" >&2; return 1; }
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# ensure NAME ANSWERS START SUMMARY WHERE: starts NAME if ANSWERS fails, waits, prints one line.
ensure() {
  local name="$1" answers="$2" start="$3" summary="$4" where="$5"
  if "$answers"; then
    log "$name" "up ($where answers: $("$summary"))"
    return 0
  fi
  log "$name" "not answering on $where; starting it"
  "$start" || log "$name" "start command returned non-zero; waiting for the port anyway"
  for ((i = 0; i < WAIT_SECONDS_MAX * 4; i++)); do
    if "$answers"; then
      log "$name" "up ($where answers after ~$((i / 4)) s: $("$summary"))"
      return 0
    fi
    sleep 0.25
  done
  log "$name" "FAILED: $where does not answer after ${WAIT_SECONDS_MAX} s" >&2
  return 1
}

status=0
ensure postgresql pg_answers start_pg pg_summary "$HOST:$PG_PORT" || status=1
ensure redis redis_answers start_redis redis_summary "$HOST:$REDIS_PORT" || status=1
exit "$status"
