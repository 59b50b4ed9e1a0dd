/**
 * Goal: whatever users ask, in any order, and whatever commands get lost, the planner settles:
 * every resource ends converged or in error with a reason; nothing stays transitioning; no host
 * ever holds more than its capacity; a VM's domain exists on at most one host; a volume's disk is
 * in at most one domain; and at the end there are no orphans (a domain or dataset without a live
 * resource placed there).
 *
 * Method: fast-check generates a fleet, a sequence of api operations (decided by the real decide
 * functions; refused ones are skipped) interleaved with partial reconciliations, and a loss rate
 * for agent commands. The synchronous test bed runs the real projector and planner against ideal
 * agents; invariants are checked after every operation and at the end.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import type { AgentCommand } from '../../../src/model/commands.ts';
import { isConvergedIn, isSettled } from '../../../src/model/convergence.ts';
import * as decide from '../../../src/model/decide.ts';
import { computeCapacity } from '../../../src/model/placement.ts';
import {
  isRemoved,
  type HostRow,
  type VmRow,
  type VolumeRow,
} from '../../../src/model/resources.ts';
import { Agents, addHost, CountingIds, Ledger, reconcileAll } from './harness.ts';

/** Host size: small, so a few VMs fill a host and placement has to count. */
const HOST = { vcpus: 4, memoryMb: 6144 };

const op = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('createVm'),
      vcpus: fc.integer({ min: 1, max: 4 }),
      memoryMb: fc.integer({ min: 256, max: 4096 }),
      start: fc.boolean(),
      extra: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 2 }),
    }),
  },
  fc.record({
    kind: fc.constantFrom(
      'start',
      'stop',
      'restart',
      'deleteVm',
      'snapshot',
      'deleteVolume',
      'deleteSnapshot',
      'detach',
      'grow',
      'clone',
      'restore',
    ),
    pick: fc.nat(),
  }),
  fc.record({ kind: fc.constant('createVolume'), sizeGb: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ kind: fc.constant('attach'), pick: fc.nat(), to: fc.nat() }),
  fc.record({
    kind: fc.constantFrom('maintenance', 'activate', 'hostDown', 'hostUp'),
    pick: fc.nat(),
  }),
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function pick<T>(items: readonly T[], n: number): T | undefined {
  return items.length === 0 ? undefined : items[n % items.length];
}

/** Safety invariants on the agents' hosts. */
function checkSafety(ledger: Ledger, agents: Agents): void {
  const seenVm = new Map<string, string>();
  const seenDisk = new Map<string, string>();
  for (const [hostId, domains] of agents.domains) {
    const host = ledger.row(hostId) as HostRow;
    const cap = computeCapacity(host);
    const used = agents.usage(hostId);
    expect(used.vcpus, `vcpus on ${hostId}`).toBeLessThanOrEqual(cap.vcpus);
    expect(used.memoryMb, `memory on ${hostId}`).toBeLessThanOrEqual(cap.memoryMb);
    for (const [vmId, d] of domains) {
      expect(seenVm.get(vmId), `${vmId} on two hosts`).toBeUndefined();
      seenVm.set(vmId, hostId);
      for (const disk of d.disks) {
        expect(seenDisk.get(disk), `${disk} in two domains`).toBeUndefined();
        seenDisk.set(disk, vmId);
      }
    }
  }
}

function run(ops: readonly Op[], lossPercent: number, seed: number, partial: readonly number[]) {
  const ledger = new Ledger();
  const ids = new CountingIds();
  let rng = seed >>> 0;
  const lose = (_c: AgentCommand) => {
    rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
    return rng % 100 < lossPercent;
  };
  const agents = new Agents(ledger, lose);
  const computes = [0, 1, 2].map(() => addHost(ledger, agents, ids, { kind: 'compute', ...HOST }));
  addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 400 });
  addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 400 });
  let now = 0;
  const ctx = () => ({ nowMs: now, ids });
  const live = <T extends 'virtualMachine' | 'volume' | 'snapshot'>(type: T) =>
    ledger.list(type).filter((r) => !isRemoved(r));
  const owner = (v: VolumeRow) =>
    v.virtualMachineId === null ? null : (ledger.row(v.virtualMachineId) as VmRow);
  const try_ = (d: decide.Decision) => {
    if (d.ok) ledger.append(d.appends);
  };
  ops.forEach((o, i) => {
    now += 1;
    const vms = live('virtualMachine');
    const vols = live('volume');
    const snaps = live('snapshot');
    switch (o.kind) {
      case 'createVm':
        try_(
          decide.decideCreateVm(
            {
              accountId: 'acct-1',
              name: `vm${i}`,
              imageId: 'img-00000002',
              vcpus: o.vcpus,
              memoryMb: o.memoryMb,
              start: o.start,
              volumes: o.extra.map((sizeGb) => ({ sizeGb })),
            },
            ctx(),
          ),
        );
        break;
      case 'start':
      case 'stop':
      case 'restart': {
        const vm = pick(vms, o.pick);
        if (vm === undefined) break;
        const f =
          o.kind === 'start'
            ? decide.decideStartVm
            : o.kind === 'stop'
              ? decide.decideStopVm
              : decide.decideRestartVm;
        try_(f(vm, ctx()));
        break;
      }
      case 'deleteVm': {
        const vm = pick(vms, o.pick);
        if (vm !== undefined)
          try_(
            decide.decideDeleteVm(
              vm,
              { snapshots: ledger.list('snapshot'), volumes: ledger.list('volume') },
              ctx(),
            ),
          );
        break;
      }
      case 'createVolume':
        try_(
          decide.decideCreateVolume(
            { accountId: 'acct-1', name: `v${i}`, sizeGb: o.sizeGb },
            null,
            ctx(),
          ),
        );
        break;
      case 'attach': {
        const v = pick(vols, o.pick);
        const vm = pick(vms, o.to);
        if (v !== undefined && vm !== undefined)
          try_(
            decide.decideAttachVolume(
              v,
              vm,
              vols.filter((x) => vm.volumeIds.includes(x.id)),
              ctx(),
            ),
          );
        break;
      }
      case 'detach': {
        const v = pick(vols, o.pick);
        if (v !== undefined)
          try_(
            decide.decideDetachVolume(
              v,
              v.virtualMachineId === null ? null : (ledger.row(v.virtualMachineId) as VmRow),
              ctx(),
            ),
          );
        break;
      }
      case 'grow': {
        const v = pick(vols, o.pick);
        if (v === undefined) break;
        const vm = v.virtualMachineId === null ? null : (ledger.row(v.virtualMachineId) as VmRow);
        try_(decide.decideGrowVolume(v, v.sizeGb + 5, { vm, vmVolumes: vols }, ctx()));
        break;
      }
      case 'snapshot': {
        const v = pick(vols, o.pick);
        if (v !== undefined)
          try_(decide.decideSnapshotVolume(v, { name: `s${i}` }, ctx(), owner(v)));
        break;
      }
      case 'restore': {
        const s = pick(snaps, o.pick);
        if (s === undefined) break;
        const v = ledger.row(s.volumeId);
        if (v.type !== 'volume') break;
        const vm = v.virtualMachineId === null ? null : (ledger.row(v.virtualMachineId) as VmRow);
        try_(
          decide.decideRestoreVolume(v, s.id, { snapshots: ledger.list('snapshot'), vm }, ctx()),
        );
        break;
      }
      case 'clone': {
        const s = pick(snaps, o.pick);
        if (s !== undefined)
          try_(
            decide.decideCreateVolume(
              { accountId: 'acct-1', name: `c${i}`, sourceSnapshotId: s.id },
              s,
              ctx(),
              {
                volume: ledger.row(s.volumeId) as VolumeRow,
                vm: owner(ledger.row(s.volumeId) as VolumeRow),
              },
            ),
          );
        break;
      }
      case 'deleteVolume': {
        const v = pick(vols, o.pick);
        if (v !== undefined)
          try_(
            decide.decideDeleteVolume(
              v,
              { snapshots: ledger.list('snapshot'), volumes: ledger.list('volume') },
              ctx(),
            ),
          );
        break;
      }
      case 'deleteSnapshot': {
        const s = pick(snaps, o.pick);
        if (s !== undefined) try_(decide.decideDeleteSnapshot(s, ledger.list('volume'), ctx()));
        break;
      }
      case 'maintenance':
      case 'activate': {
        const h = ledger.row(pick(computes, o.pick)!) as HostRow;
        try_(
          o.kind === 'maintenance'
            ? decide.decideHostMaintenance(h, ctx())
            : decide.decideHostActivate(h, ctx()),
        );
        break;
      }
      case 'hostDown':
      case 'hostUp': {
        const h = ledger.row(pick(computes, o.pick)!) as HostRow;
        if (o.kind === 'hostDown' && h.online)
          ledger.emit(h.id, 'host.down', { lastSeenMs: now }, now);
        if (o.kind === 'hostUp' && !h.online)
          ledger.emit(h.id, 'host.up', { ...HOST, poolSizeBytes: null }, now);
        break;
      }
    }
    now = reconcileAll(ledger, agents, ids, now, { stopAfterPasses: pick(partial, i) ?? 3 });
    checkSafety(ledger, agents);
  });
  // Faults heal: every host reports again, then everything settles.
  for (const id of computes) {
    const h = ledger.row(id) as HostRow;
    if (!h.online) ledger.emit(id, 'host.up', { ...HOST, poolSizeBytes: null }, now);
  }
  now = reconcileAll(ledger, agents, ids, now + 1);
  checkSafety(ledger, agents);
  return { ledger, agents, now };
}

describe('convergence', () => {
  test.prop(
    [
      fc.array(op, { maxLength: 30 }),
      fc.constantFrom(0, 0, 10, 40),
      fc.integer(),
      fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 30 }),
    ],
    { numRuns: 150 },
  )('settles every resource safely, with no orphans', (ops, lossPercent, seed, partial) => {
    const { ledger, agents, now } = run(ops, lossPercent, seed, partial);
    const world = ledger.world();
    for (const p of ledger.rows.values()) {
      const row = ledger.row(p.stream);
      expect(isSettled(row), `${row.id} ${row.state}: ${row.transitioningMessage ?? ''}`).toBe(
        true,
      );
      if (row.state !== 'error')
        expect(isConvergedIn(row, world, now), `${row.id} ${row.state}`).toBe(true);
    }
    for (const [hostId, domains] of agents.domains)
      for (const vmId of domains.keys()) {
        const vm = ledger.row(vmId) as VmRow;
        expect(!isRemoved(vm) && vm.hostId === hostId, `orphan domain ${vmId} on ${hostId}`).toBe(
          true,
        );
      }
    for (const [nodeId, sets] of agents.datasets)
      for (const volId of sets.keys()) {
        const v = ledger.row(volId);
        expect(
          v.type === 'volume' && !isRemoved(v) && v.storageNodeId === nodeId,
          `orphan dataset ${volId}`,
        ).toBe(true);
      }
    // Without lost commands, the only reasons to give up are capacity and what follows from it.
    if (lossPercent === 0)
      for (const p of ledger.rows.values()) {
        const row = ledger.row(p.stream);
        if (row.state === 'error')
          expect(row.lastError, row.id).toMatch(
            /no (compute host|storage node) has|volume \S+ (failed|is deleted)/,
          );
      }
  });
});
