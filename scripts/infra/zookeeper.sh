#!/usr/bin/env bash
# Installs and starts a standalone ZooKeeper on 127.0.0.1:2181 for the real lock suites and the
# staging mode (docs/infrastructure.md). Idempotent: does nothing when 2181 already answers `srvr`;
# installs the Debian package only when missing; starts the server with the project's own config
# (loopback only, no admin web server on :8080, data under /var/lib/cloudbed/zookeeper) and waits,
# bounded, until it answers. Prints one status line. Exit status non-zero when ZooKeeper is not usable.
#
# Environment: CLOUDBED_APT_STAMP — a file shared by the scripts of one scripts/setup-infra.sh run;
# when set, `apt-get update` runs only if the file is still empty, and fills it afterwards.
set -euo pipefail

HOST=127.0.0.1
PORT=2181
ZK_BIN=/usr/share/zookeeper/bin/zkServer.sh
CONF_DIR=/var/lib/cloudbed/zookeeper
CONF="$CONF_DIR/zoo.cfg"
# Not the package's /var/lib/zookeeper: its `myid` placeholder makes a standalone server refuse to start.
DATA_DIR="$CONF_DIR/data"
LOG_DIR=/var/log/zookeeper
WAIT_SECONDS_MAX=30

log() { echo "infra/zookeeper: $*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Prints the server's `srvr` answer; fails when nothing answers within 2 s. `srvr` is the one
# four-letter word ZooKeeper 3.5+ allows by default, so this also works on a server started elsewhere.
srvr() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf srvr >&3 && cat <&3" 2>/dev/null |
    grep -E '^(Zookeeper version|Mode):'
}

summary() { srvr | sed -e 's/^Zookeeper version: //' -e 's/[-,].*//' -e 's/^Mode: //' | paste -sd' ' -; }

apt_update_once() {
  local stamp="${CLOUDBED_APT_STAMP:-}"
  if [[ -n "$stamp" && -s "$stamp" ]]; then return 0; fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  if [[ -n "$stamp" ]]; then echo updated >"$stamp"; fi
}

if srvr >/dev/null; then
  log "up ($HOST:$PORT answers: $(summary))"
  exit 0
fi

if ! installed zookeeper || [[ ! -x "$ZK_BIN" ]]; then
  apt_update_once
  # Another install may hold the dpkg lock: wait for it rather than fail.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq zookeeper >/dev/null
fi

mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
# Written every time it differs, so a changed script takes effect; the server reads it on start.
desired="$(
  cat <<EOF
# Written by scripts/infra/zookeeper.sh: standalone server for tests and staging, loopback only.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$DATA_DIR
clientPort=$PORT
clientPortAddress=$HOST
# Every test run opens many sessions from 127.0.0.1; the default cap is 60 per address.
maxClientCnxns=1000
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,mntr,cons
EOF
)"
if [[ ! -f "$CONF" ]] || [[ "$(cat "$CONF")" != "$desired" ]]; then
  printf '%s\n' "$desired" >"$CONF"
fi

# zkServer.sh refuses a second start while its pid file names a live process; a stale pid file
# (process gone) is simply overwritten.
ZOO_LOG_DIR="$LOG_DIR" "$ZK_BIN" start "$CONF" >/dev/null 2>&1 ||
  log "zkServer.sh start returned non-zero; waiting for the port anyway"

for ((i = 0; i < WAIT_SECONDS_MAX * 4; i++)); do
  if srvr >/dev/null; then
    log "up ($HOST:$PORT answers after ~$((i / 4)) s: $(summary))"
    exit 0
  fi
  sleep 0.25
done
log "FAILED: $HOST:$PORT does not answer after ${WAIT_SECONDS_MAX} s (see $LOG_DIR)" >&2
exit 1
