#!/usr/bin/env bash
# Brings this machine to what the real-infrastructure suites (`npm run test:real`) and the staging
# mode need (docs/infrastructure.md): PostgreSQL and Redis answer (started if not), ZooKeeper, then
# libvirt, then ZFS over FUSE installed and started. Each step is a script in scripts/infra/ that
# installs only what is missing, starts only what does not answer and prints one status line, so a
# second run is quick and changes nothing. Stops at the first step that fails, naming it.
# Loopback addresses only. Run as root (apt-get, daemons).
set -euo pipefail

cd "$(dirname "$0")/.."
INFRA=scripts/infra

if [[ "$(id -u)" != 0 ]]; then
  echo "setup-infra: must run as root (it installs Debian packages and starts daemons)" >&2
  exit 1
fi

# The steps share one `apt-get update`: the first that must install something runs it and fills
# this file; the others see it filled and skip theirs.
CLOUDBED_APT_STAMP="$(mktemp -t cloudbed-apt.XXXXXX)"
export CLOUDBED_APT_STAMP
trap 'rm -f "$CLOUDBED_APT_STAMP"' EXIT

# step NAME REQUIRED: runs scripts/infra/NAME.sh; a missing optional script is reported and skipped.
step() {
  local name="$1" required="$2" script="$INFRA/$1.sh"
  if [[ ! -f "$script" ]]; then
    if [[ "$required" == required ]]; then
      echo "setup-infra: FAILED: $script is missing" >&2
      exit 1
    fi
    echo "setup-infra: $name: skipped ($script not present)"
    return 0
  fi
  if ! bash "$script"; then
    echo "setup-infra: FAILED at step '$name' ($script); fix it and run scripts/setup-infra.sh again" >&2
    exit 1
  fi
}

started=$SECONDS
step check-services required
step zookeeper required
step libvirt optional
step zfs optional
echo "setup-infra: ready in $((SECONDS - started)) s"
