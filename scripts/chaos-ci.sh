#!/usr/bin/env bash
# Runs a chaos experiment (default experiments/kill-storm.yaml) against a staging deployment of its
# own — a fresh prefix, a free API port, three hosts — then `staging down --purge`, and fails if
# the verdict is not the expected one or the purge left anything of the prefix. What .ci/run runs
# after the real suites; needs the services of scripts/setup-infra.sh.
# Usage: scripts/chaos-ci.sh [EXPERIMENT.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."

experiment="${1:-experiments/kill-storm.yaml}"
prefix="ci$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
work="$(mktemp -d -t cloudbed-chaos-ci.XXXXXX)"
port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
config="$work/staging.yaml"
cat > "$config" <<YAML
prefix: $prefix
stateDir: $work/state
database: { url: 'postgres://postgres@127.0.0.1:5432/test' }
redis: { url: 'redis://127.0.0.1:6379' }
zookeeper: { address: '127.0.0.1:2181' }
libvirt: { uri: 'qemu:///system', memoryDivisor: 16 }
zfs: { pool: cloudbed, sizeDivisor: 1024 }
api: { port: $port }
mainLoop: { sweepInterval: 2s }
agents: { inventoryInterval: 2s, shutdownTimeout: 1s }
hosts:
  - { name: compute-1, kind: compute, vcpus: 16, memoryMb: 16384 }
  - { name: compute-2, kind: compute, vcpus: 16, memoryMb: 16384 }
  - { name: storage-1, kind: storage, poolSizeGb: 2048 }
YAML

status=0
node bin/cloudbed.js chaos "$experiment" --config "$config" --runs-dir "$work/runs" || status=$?
# Whatever the verdict: remove every trace of the run, and check that nothing is left.
node bin/cloudbed.js staging down --purge --config "$config" | tail -n 1 || status=1
left_domains="$(virsh -c qemu:///system list --all --name | grep -c "^$prefix-" || true)"
left_datasets="$(zfs list -H -o name -t all | grep -c "^cloudbed/$prefix-" || true)"
if [[ "$left_domains" != 0 || "$left_datasets" != 0 ]]; then
  echo "chaos-ci: the purge left $left_domains domains and $left_datasets datasets of $prefix" >&2
  status=1
fi
if [[ "$status" != 0 ]]; then
  echo "chaos-ci: failed (status $status); run directory kept under $work/runs" >&2
  exit "$status"
fi
created="$(cat "$work"/runs/*/workload.jsonl 2>/dev/null | grep '"method":"POST","path":"/v1/virtualmachines"' | grep -c '"status":202' || true)"
rm -rf "$work"
echo "chaos-ci: $experiment ok ($created VMs created), and $prefix purged"
