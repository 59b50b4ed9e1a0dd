#!/usr/bin/env bash
# Installs and starts libvirt with the QEMU/KVM driver on this machine, for the real hypervisor
# suites and the staging mode (docs/infrastructure.md). Idempotent: installs only missing packages,
# creates the service users the Debian packages do not create without systemd, gives the kvm group
# /dev/kvm (what udev would do; qemu runs as libvirt-qemu), runs qemu in the host's mount namespace
# (see QEMU_CONF below), starts virtlogd and libvirtd only when `virsh -c qemu:///system` does not
# answer (restarts libvirtd once when that setting had to change), waits (bounded) until it answers,
# and has libvirt probe QEMU once so the first real define does not pay for it. Prints one status
# line. Exit status non-zero when libvirt is not usable at the end.
#
# Environment: CLOUDBED_APT_STAMP — a file shared by the scripts of one scripts/setup-infra.sh run;
# when set, `apt-get update` runs only if the file is still empty, and fills it afterwards.
set -euo pipefail

URI="qemu:///system"
PACKAGES=(libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86)
WAIT_SECONDS_MAX=30
PROBE_SECONDS_MAX=180
# By default libvirt starts each qemu in a private mount namespace, a copy of the host's mounts.
# Without systemd the host's mounts are private, so unmounts do not propagate into such copies, and
# a running domain pins every ZFS file system mounted when it started: destroying any of them fails
# "dataset is busy" until that domain stops, whether it uses the volume or not. In the host's
# namespace only a domain that has an image open keeps its file system busy.
QEMU_CONF=/etc/libvirt/qemu.conf
QEMU_NAMESPACES='namespaces = []'

log() { echo "infra/libvirt: $*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

answers() { timeout 10 virsh -c "$URI" list >/dev/null 2>&1; }

# True when the daemon whose pid file is $1 is alive.
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

apt_update_once() {
  local stamp="${CLOUDBED_APT_STAMP:-}"
  if [[ -n "$stamp" && -s "$stamp" ]]; then return 0; fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  if [[ -n "$stamp" ]]; then echo updated >"$stamp"; fi
}

# Without udev /dev/kvm stays root-only, and qemu (user libvirt-qemu, group kvm) fails with
# "Could not access KVM kernel module: Permission denied". Cheap and idempotent: always done.
kvm_access() {
  if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
}

# Sets QEMU_NAMESPACES in QEMU_CONF; prints "changed" when it had to.
configure_qemu() {
  if [[ -f "$QEMU_CONF" ]] && grep -qxF "$QEMU_NAMESPACES" "$QEMU_CONF"; then return 0; fi
  mkdir -p "$(dirname "$QEMU_CONF")"
  if [[ -f "$QEMU_CONF" ]] && grep -qE '^[[:space:]]*namespaces[[:space:]]*=' "$QEMU_CONF"; then
    sed -i -E "s/^[[:space:]]*namespaces[[:space:]]*=.*/$QEMU_NAMESPACES/" "$QEMU_CONF"
  else
    printf '# Set by cloudbed scripts/infra/libvirt.sh: qemu in the host mount namespace.\n%s\n' \
      "$QEMU_NAMESPACES" >>"$QEMU_CONF"
  fi
  echo changed
}

# Waits (bounded) until `virsh` answers; fails naming what it waited for.
wait_answers() {
  local started=$SECONDS
  until answers; do
    if ((SECONDS - started >= WAIT_SECONDS_MAX)); then
      log "FAILED: $URI does not answer after ${WAIT_SECONDS_MAX} s (see /var/log/libvirt)" >&2
      exit 1
    fi
    sleep 0.25
  done
}

status() {
  local version kvm
  version="$(virsh -c "$URI" version --daemon 2>/dev/null | sed -n 's/^Running against daemon: //p' | head -n1)"
  kvm="$([[ -c /dev/kvm ]] && echo "/dev/kvm $(stat -c '%G %a' /dev/kvm)" || echo 'no /dev/kvm: TCG only')"
  echo "$URI answers, libvirt ${version:-?}, $kvm"
}

if answers; then
  kvm_access
  if [[ -n "$(configure_qemu)" ]]; then
    # libvirtd reads qemu.conf at start; running domains survive the restart.
    if alive /var/run/libvirtd.pid; then
      pid="$(cat /var/run/libvirtd.pid)"
      kill "$pid"
      for ((i = 0; i < WAIT_SECONDS_MAX * 4; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then
        log "FAILED: libvirtd (pid $pid) did not stop within ${WAIT_SECONDS_MAX} s" >&2
        exit 1
      fi
    fi
    libvirtd -d
    wait_answers
    log "up, restarted for $QEMU_CONF ($(status))"
    exit 0
  fi
  log "up ($(status))"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]} > 0)); then
  apt_update_once
  # Another install may hold the dpkg lock: wait for it rather than fail.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
fi

# Without systemd the packages' postinst does not create these; qemu runs as libvirt-qemu.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm libvirt-qemu
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt/qemu
kvm_access
configure_qemu >/dev/null

alive /var/run/virtlogd.pid || virtlogd -d
alive /var/run/libvirtd.pid || libvirtd -d

started=$SECONDS
wait_answers

# libvirt probes the QEMU binary on first use (tens of seconds here); do it now, bounded.
timeout "$PROBE_SECONDS_MAX" virsh -c "$URI" domcapabilities >/dev/null 2>&1 ||
  log "warning: QEMU capability probe did not finish in ${PROBE_SECONDS_MAX} s" >&2

log "up after $((SECONDS - started)) s ($(status))"
