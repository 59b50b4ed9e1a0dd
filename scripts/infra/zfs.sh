#!/usr/bin/env bash
# Installs and starts ZFS over FUSE (zfs-fuse: no kernel module needed) and the file-backed pool
# the real storage suites and the staging mode use (docs/infrastructure.md). Idempotent: installs only
# when missing, starts the daemon only when `zpool` cannot reach it, imports the pool if its image
# exists, creates image and pool only when the image is absent (never overwrites one), and waits
# (bounded) until `zpool list <pool>` answers. A pool that answers is not enough: zfs-fuse can
# leave its mounts dead (the daemon restarted, or wedged after busy destroys), and then every
# `zfs create` fails with "failed to create mountpoint". So the script probes what the suites do —
# creates, mounts, writes in and destroys a dataset of its own (<pool>/cbprobe-<pid>) — and when
# that fails, restarts the daemon, lazily unmounts the dead mounts, remounts and probes again.
# Prints one status line. Non-zero exit when not usable.
#
# Environment: CLOUDBED_POOL (default cloudbed), CLOUDBED_POOL_IMAGE (default
# /var/lib/cloudbed/pool.img), CLOUDBED_POOL_SIZE (sparse image size for truncate, default 4G),
# CLOUDBED_APT_STAMP — a file shared by the scripts of one scripts/setup-infra.sh run; when set,
# `apt-get update` runs only if the file is still empty, and fills it afterwards.
set -euo pipefail

POOL="${CLOUDBED_POOL:-cloudbed}"
IMAGE="${CLOUDBED_POOL_IMAGE:-/var/lib/cloudbed/pool.img}"
SIZE="${CLOUDBED_POOL_SIZE:-4G}"
WAIT_SECONDS_MAX=30

log() { echo "infra/zfs: $*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_update_once() {
  local stamp="${CLOUDBED_APT_STAMP:-}"
  if [[ -n "$stamp" && -s "$stamp" ]]; then return 0; fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  if [[ -n "$stamp" ]]; then echo updated >"$stamp"; fi
}

# `zpool list` exits 0 (even with no pools) only when the daemon answers.
daemon_answers() { timeout 10 zpool list >/dev/null 2>&1; }

pool_answers() { timeout 10 zpool list -H -o name,size,health "$POOL" 2>/dev/null; }

status() { echo "pool $(pool_answers | tr '\t' ' '), mounted at $(zfs get -H -o value mountpoint "$POOL")"; }

# wait_until WHAT COMMAND...: retries COMMAND for up to WAIT_SECONDS_MAX; fails naming WHAT.
wait_until() {
  local what="$1" started=$SECONDS
  shift
  until "$@" >/dev/null; do
    if ((SECONDS - started >= WAIT_SECONDS_MAX)); then
      log "FAILED: $what after ${WAIT_SECONDS_MAX} s" >&2
      exit 1
    fi
    sleep 0.25
  done
}

# bounded SECONDS COMMAND...: runs COMMAND (output discarded) and waits at most SECONDS for it. A
# command stuck in the kernel on a wedged zfs-fuse (state D) outlives even SIGKILL, so `timeout`
# would wait for it forever: this gives up (status 124) and leaves it to the recovery, whose
# daemon restart frees it.
bounded() {
  local limit="$1" waited=0
  shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= limit * 4)); then
      kill -9 "$pid" 2>/dev/null || true
      return 124
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  wait "$pid"
}

# probe: a dataset of the script's own is created, mounted, written in and destroyed.
probe() {
  local name="$POOL/cbprobe-$$" mp ok=1
  bounded 20 zfs create "$name" || ok=0
  if ((ok)); then
    mp="$(timeout 10 zfs get -H -o value mountpoint "$name" 2>/dev/null || true)"
    { [[ -n "$mp" ]] && bounded 10 sh -c "echo probe >'$mp/probe' && rm -f '$mp/probe'"; } || ok=0
  fi
  # Right after use a dataset can be busy for a moment: retry the destroy, bounded.
  local tries=0
  while bounded 10 zfs list -H -o name "$name"; do
    bounded 20 zfs destroy "$name" && break
    ((++tries >= 40)) && { log "FAILED: cannot destroy probe dataset $name" >&2; exit 1; }
    sleep 0.25
  done
  ((ok))
}

# ensure_pool: daemon answering and the pool imported (or created), bounded.
ensure_pool() {
  if ! daemon_answers; then
    zfs-fuse
    wait_until "the zfs-fuse daemon does not answer" daemon_answers
  fi
  if ! pool_answers >/dev/null; then
    if [[ -e "$IMAGE" ]]; then
      # The image outlived the daemon's state: import it rather than create.
      if ! zpool import -d "$(dirname "$IMAGE")" "$POOL" >/dev/null; then
        log "FAILED: $IMAGE exists but pool $POOL cannot be imported; remove the image to recreate" >&2
        exit 1
      fi
    else
      mkdir -p "$(dirname "$IMAGE")"
      truncate -s "$SIZE" "$IMAGE"
      if ! out="$(zpool create "$POOL" "$IMAGE" 2>&1)"; then
        log "FAILED: zpool create $POOL $IMAGE: $out" >&2
        exit 1
      fi
    fi
  fi
  wait_until "pool $POOL does not answer" pool_answers
}

# recover: the daemon is killed (by pid) and restarted, its dead mounts lazily unmounted, the pool
# imported again and every dataset mounted (docs/infrastructure.md, hazards).
recover() {
  log "pool $POOL answers but a dataset cannot be created and used there; restarting zfs-fuse"
  local pid
  for pid in $(pgrep -x zfs-fuse || true); do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 40); do pgrep -x zfs-fuse >/dev/null || break; sleep 0.25; done
  for pid in $(pgrep -x zfs-fuse || true); do kill -9 "$pid" 2>/dev/null || true; done
  # Deepest first, so a parent's unmount does not strand its children.
  awk '$3 == "fuse.zfs" { print $2 }' /proc/mounts | sort -r | while read -r mp; do
    umount -l "$mp" 2>/dev/null || true
  done
  rm -f /var/run/zfs-fuse.pid /run/zfs-fuse.pid 2>/dev/null || true
  ensure_pool
  timeout 60 zfs mount -a >/dev/null 2>&1 || true
}

started=$SECONDS
if ! pool_answers >/dev/null; then
  if ! installed zfs-fuse; then
    apt_update_once
    # Another install may hold the dpkg lock: wait for it rather than fail.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq zfs-fuse >/dev/null
  fi
  ensure_pool
fi

if ! probe; then
  recover
  if ! probe; then
    log "FAILED: pool $POOL answers but a dataset cannot be created, mounted and written in, even after restarting zfs-fuse" >&2
    exit 1
  fi
fi
log "up after $((SECONDS - started)) s ($(status))"
