/**
 * Goal: the planner drives every resource to what was asked — place, send idempotent ensure
 * commands, wait for in-flight attempts and for dependencies, cascade deletes, evacuate hosts in
 * maintenance, never move a VM off a down host — and gives up into `error` with a reason after the
 * attempt limit instead of retrying forever.
 *
 * Method: examples over the synchronous test bed (real decide, projector, plan and stepWrite; ideal
 * agents that report observations on change), stepping the clock to attempt deadlines.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, retryBudgetMs } from '../../../src/model/backoff.ts';
import type { AgentCommand } from '../../../src/model/commands.ts';
import { isConverged, isConvergedIn, isSettled } from '../../../src/model/convergence.ts';
import {
  decideAttachVolume,
  decideCreateVm,
  decideCreateVolume,
  decideDeleteSnapshot,
  decideDeleteVm,
  decideDeleteVolume,
  decideDetachVolume,
  decideGrowVolume,
  decideHostMaintenance,
  decideRestartVm,
  decideRestoreVolume,
  decideSnapshotVolume,
  decideStopVm,
} from '../../../src/model/decide.ts';
import { plan, stepWrite } from '../../../src/model/plan.ts';
import {
  BYTES_PER_GB,
  imageBaseSnapshot,
  type HostRow,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../../../src/model/resources.ts';
import { Agents, addHost, CountingIds, Ledger, reconcileAll } from './harness.ts';

const policy = DEFAULT_RETRY_POLICY;

function bed(options: { drop?: (c: AgentCommand) => boolean } = {}) {
  const ledger = new Ledger();
  const ids = new CountingIds();
  const agents = new Agents(ledger, options.drop);
  const compute = addHost(ledger, agents, ids, { kind: 'compute', vcpus: 8, memoryMb: 8192 });
  const storage = addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 500 });
  const ctx = (nowMs = 0) => ({ nowMs, ids });
  const createVm = (extra: Partial<Parameters<typeof decideCreateVm>[0]> = {}) =>
    ledger.commit(
      decideCreateVm(
        {
          accountId: 'acct-1',
          name: 'web',
          imageId: 'img-00000001',
          vcpus: 2,
          memoryMb: 2048,
          ...extra,
        },
        ctx(),
      ),
    );
  const vm = (id: string) => ledger.row(id) as VmRow;
  const vol = (id: string) => ledger.row(id) as VolumeRow;
  const snap = (id: string) => ledger.row(id) as SnapshotRow;
  const settle = (at = 0) => reconcileAll(ledger, agents, ids, at, { policy });
  return { ledger, ids, agents, compute, storage, ctx, createVm, vm, vol, snap, settle };
}

describe('plan: the happy paths', () => {
  it('creates a VM: places, creates its root volume from the image, then starts it', () => {
    const b = bed();
    const id = b.createVm({ volumes: [{ sizeGb: 10 }] });
    b.settle();
    const vm = b.vm(id);
    expect(vm).toMatchObject({ state: 'running', hostId: b.compute, transitioning: 'no' });
    const root = b.vol(vm.rootVolumeId);
    expect(root).toMatchObject({ state: 'attached', storageNodeId: b.storage });
    expect(b.agents.datasets.get(b.storage)?.get(root.id)?.origin).toBe(
      imageBaseSnapshot('img-00000001'),
    );
    expect(b.agents.domains.get(b.compute)?.get(id)).toMatchObject({
      state: 'running',
      disks: [vm.rootVolumeId, vm.volumeIds[0]],
    });
    for (const row of [vm, root, b.vol(vm.volumeIds[0]!)]) {
      expect(isConverged(row)).toBe(true);
      expect(isConvergedIn(row, b.ledger.world(), 0)).toBe(true);
    }
    // The first command for the VM waited for its volumes: the agent never saw a missing disk.
    const first = b.agents.commands.find((c) => c.type === 'vm.ensure');
    expect(first?.type === 'vm.ensure' && first.spec.disks.length).toBe(2);
  });

  it('creates a stopped VM defined but not running', () => {
    const b = bed();
    const id = b.createVm({ start: false });
    b.settle();
    expect(b.vm(id).state).toBe('stopped');
    expect(b.agents.domains.get(b.compute)?.get(id)?.state).toBe('shutoff');
  });

  it('restarts by a stop and a start', () => {
    const b = bed();
    const id = b.createVm();
    b.settle();
    const before = b.agents.commands.length;
    b.ledger.commit(decideRestartVm(b.vm(id), b.ctx(1)));
    b.settle(1);
    const powers = b.agents.commands
      .slice(before)
      .map((c) => (c.type === 'vm.ensure' ? c.power : c.type));
    expect(powers).toEqual(['stopped', 'running']);
    expect(b.vm(id).state).toBe('running');
  });

  it('attaches a volume to a stopped VM and redefines its domain', () => {
    const b = bed();
    const id = b.createVm({ start: false });
    const volId = b.ledger.commit(
      decideCreateVolume({ accountId: 'acct-1', name: 'data', sizeGb: 20 }, null, b.ctx()),
    );
    b.settle();
    b.ledger.commit(decideAttachVolume(b.vol(volId), b.vm(id), [], b.ctx(1)));
    expect(isConverged(b.vm(id))).toBe(false); // the domain still has the old disks
    b.settle(1);
    expect(b.agents.domains.get(b.compute)?.get(id)?.disks).toEqual([b.vm(id).rootVolumeId, volId]);
    expect(b.vol(volId).state).toBe('attached');
    b.ledger.commit(decideDetachVolume(b.vol(volId), b.vm(id), b.ctx(2)));
    b.settle(2);
    expect(b.agents.domains.get(b.compute)?.get(id)?.disks).toEqual([b.vm(id).rootVolumeId]);
    expect(isConverged(b.vm(id))).toBe(true);
  });

  it('grows, snapshots, restores and clones volumes', () => {
    const b = bed();
    const volId = b.ledger.commit(
      decideCreateVolume({ accountId: 'acct-1', name: 'data', sizeGb: 20 }, null, b.ctx()),
    );
    b.settle();
    b.ledger.commit(decideGrowVolume(b.vol(volId), 30, { vm: null, vmVolumes: [] }, b.ctx(1)));
    b.settle(1);
    expect(b.agents.datasets.get(b.storage)?.get(volId)?.sizeBytes).toBe(30 * BYTES_PER_GB);
    const snapId = b.ledger.commit(decideSnapshotVolume(b.vol(volId), { name: 's1' }, b.ctx(2)));
    b.settle(2);
    expect(b.snap(snapId).state).toBe('available');
    b.ledger.commit(
      decideRestoreVolume(
        b.vol(volId),
        snapId,
        { snapshots: [b.snap(snapId)], vm: null },
        b.ctx(3),
      ),
    );
    expect(b.vol(volId).state).toBe('restoring');
    b.settle(3);
    expect(b.vol(volId)).toMatchObject({ state: 'available', restoreSnapshotId: null });
    const cloneId = b.ledger.commit(
      decideCreateVolume(
        { accountId: 'acct-1', name: 'copy', sourceSnapshotId: snapId },
        b.snap(snapId),
        b.ctx(4),
      ),
    );
    b.settle(4);
    expect(b.vol(cloneId)).toMatchObject({
      state: 'available',
      storageNodeId: b.storage,
      sizeGb: 30,
    });
    expect(b.agents.datasets.get(b.storage)?.get(cloneId)?.origin).toBe(
      `cloudbed/${volId}@${snapId}`,
    );
    // The snapshot cannot go while the clone lives; the volume cannot go while its snapshot has one.
    const refused = decideDeleteSnapshot(b.snap(snapId), b.ledger.list('volume'), b.ctx(5));
    expect(refused.ok === false && refused.error).toMatchObject({ code: 'InvalidState' });
    expect(refused.ok === false && refused.error.message).toContain(cloneId);
  });
});

describe('plan: cascades and garbage collection', () => {
  it('deletes a VM: domain gone, root volume and its snapshots deleted, extra volumes detached', () => {
    const b = bed();
    const id = b.createVm({ volumes: [{ sizeGb: 5 }] });
    b.settle();
    const { rootVolumeId, volumeIds } = b.vm(id);
    const extra = volumeIds[0]!;
    const rootSnap = b.ledger.commit(
      decideSnapshotVolume(b.vol(rootVolumeId), { name: 's' }, b.ctx(1)),
    );
    b.settle(1);
    b.ledger.commit(
      decideDeleteVm(
        b.vm(id),
        { snapshots: b.ledger.list('snapshot'), volumes: b.ledger.list('volume') },
        b.ctx(2),
      ),
    );
    b.settle(2);
    expect(b.vm(id).state).toBe('removed');
    expect(b.vol(rootVolumeId).state).toBe('removed');
    expect(b.snap(rootSnap).state).toBe('removed');
    expect(b.vol(extra)).toMatchObject({ state: 'available', virtualMachineId: null });
    expect(b.agents.domains.get(b.compute)?.size).toBe(0);
    expect([...(b.agents.datasets.get(b.storage)?.keys() ?? [])]).toEqual([extra]);
    expect(b.agents.snapshots.get(b.storage)?.size).toBe(0);
    for (const row of [b.vm(id), b.vol(rootVolumeId), b.snap(rootSnap), b.vol(extra)])
      expect(isConverged(row)).toBe(true);
  });

  it('deletes a detached volume after its snapshots', () => {
    const b = bed();
    const volId = b.ledger.commit(
      decideCreateVolume({ accountId: 'acct-1', name: 'd', sizeGb: 5 }, null, b.ctx()),
    );
    b.settle();
    const s = b.ledger.commit(decideSnapshotVolume(b.vol(volId), { name: 's' }, b.ctx(1)));
    b.settle(1);
    b.ledger.commit(
      decideDeleteVolume(
        b.vol(volId),
        { snapshots: b.ledger.list('snapshot'), volumes: b.ledger.list('volume') },
        b.ctx(2),
      ),
    );
    const world = b.ledger.world();
    const step = plan(b.vol(volId), { nowMs: 2, world, policy });
    expect(step.kind === 'wait' && step.message).toContain(s);
    b.settle(2);
    expect(b.vol(volId).state).toBe('removed');
    expect(b.snap(s).state).toBe('removed');
  });
});

describe('plan: hosts', () => {
  it('evacuates a host in maintenance: absent there first, then placed elsewhere', () => {
    const b = bed();
    const id = b.createVm();
    b.settle();
    const second = addHost(b.ledger, b.agents, b.ids, {
      kind: 'compute',
      vcpus: 8,
      memoryMb: 8192,
    });
    b.ledger.commit(decideHostMaintenance(b.ledger.row(b.compute) as HostRow, b.ctx(1)));
    b.settle(1);
    expect(b.vm(id)).toMatchObject({ state: 'running', hostId: second });
    expect(b.agents.domains.get(b.compute)?.size).toBe(0);
    expect(b.agents.domains.get(second)?.get(id)?.state).toBe('running');
  });

  it('never moves a VM off a down host: it waits with a message', () => {
    const b = bed();
    const id = b.createVm();
    b.settle();
    addHost(b.ledger, b.agents, b.ids, { kind: 'compute', vcpus: 8, memoryMb: 8192 });
    b.ledger.emit(b.compute, 'host.down', { lastSeenMs: 0 }, 1);
    b.ledger.emit(id, 'vm.observed', { hostId: b.compute, domain: 'crashed', disks: null }, 2);
    expect(b.vm(id).state).toBe('starting');
    b.settle(2);
    expect(b.vm(id)).toMatchObject({ state: 'starting', hostId: b.compute });
    expect(b.vm(id).transitioningMessage).toContain('down');
    expect(isSettled(b.vm(id))).toBe(false);
    b.ledger.emit(b.compute, 'host.up', { vcpus: 8, memoryMb: 8192, poolSizeBytes: null }, 3);
    b.settle(3);
    expect(b.vm(id)).toMatchObject({ state: 'running', hostId: b.compute });
  });
});

describe('plan: retries and giving up', () => {
  it('resends a lost command after the backoff deadline, same goal, next attempt', () => {
    let dropped = 0;
    const b = bed({ drop: (c) => c.type === 'vm.ensure' && dropped++ < 2 });
    const id = b.createVm();
    b.settle();
    const ensures = b.agents.commands.filter((c) => c.type === 'vm.ensure');
    expect(ensures).toHaveLength(3);
    expect(new Set(ensures.map((c) => c.commandId)).size).toBe(3);
    expect(b.vm(id).state).toBe('running');
  });

  it('gives up into error with a reason after maxAttempts, within the retry budget', () => {
    const b = bed({ drop: (c) => c.type === 'vm.ensure' });
    const id = b.createVm();
    const end = b.settle();
    const vm = b.vm(id);
    expect(vm.state).toBe('error');
    expect(vm.lastError).toMatch(/not done after 8 attempts/);
    expect(isSettled(vm)).toBe(true);
    expect(b.agents.commands.filter((c) => c.type === 'vm.ensure')).toHaveLength(
      policy.maxAttempts,
    );
    expect(end).toBeLessThanOrEqual(retryBudgetMs(policy) + 100);
    // Sticky: nothing more is planned.
    expect(plan(vm, { nowMs: end + 1e9, world: b.ledger.world(), policy }).kind).toBe('none');
  });

  it('fails a VM that fits nowhere after retrying placement', () => {
    const b = bed();
    const id = b.createVm({ vcpus: 8, memoryMb: 16384 });
    b.settle();
    expect(b.vm(id)).toMatchObject({ state: 'error', hostId: null });
    expect(b.vm(id).lastError).toMatch(/no compute host has 8 vcpus and 16384 MB free/);
  });

  it('writes a waiting message once, not on every pass', () => {
    const b = bed();
    const id = b.createVm();
    const world = b.ledger.world();
    const host = b.ledger.row(b.compute) as HostRow;
    b.ledger.emit(b.compute, 'host.down', { lastSeenMs: 0 }, 1);
    b.ledger.emit(id, 'vm.placed', { hostId: host.id }, 1);
    world.put(b.ledger.row(b.compute));
    world.put(b.vm(id));
    b.settle(1);
    const step = plan(b.vm(id), { nowMs: 2, world: b.ledger.world(), policy });
    expect(step.kind).toBe('wait');
    const write = stepWrite(b.vm(id), step, {
      nowMs: 2,
      commandId: 'c',
      token: 1,
      policy,
      actor: 'mainloop',
    });
    expect(write.appends).toEqual([]);
  });

  it('stamps commands with the lock token and records the attempt', () => {
    const b = bed();
    const id = b.createVm({ start: false });
    b.ledger.emit(id, 'vm.placed', { hostId: b.compute }, 0);
    const volId = b.vm(id).rootVolumeId;
    b.ledger.emit(volId, 'volume.placed', { storageNodeId: b.storage }, 0);
    b.ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: b.storage, present: true, sizeBytes: null, origin: null },
      0,
    );
    const step = plan(b.vm(id), { nowMs: 100, world: b.ledger.world(), policy });
    expect(step).toMatchObject({ kind: 'send', hostId: b.compute, goal: `stopped:${volId}` });
    const write = stepWrite(b.vm(id), step, {
      nowMs: 100,
      commandId: 'cmd-x',
      token: 42,
      policy,
      actor: 'mainloop',
    });
    expect(write.command).toMatchObject({
      type: 'vm.ensure',
      commandId: 'cmd-x',
      token: 42,
      vmId: id,
      power: 'stopped',
    });
    expect(write.appends[0]?.events[0]).toMatchObject({
      type: 'vm.command-sent',
      data: { attempt: 1, nextAttemptAtMs: 100 + policy.baseMs, token: 42 },
      meta: { fencingToken: 42, actor: 'mainloop' },
    });
    b.ledger.append(write.appends);
    expect(plan(b.vm(id), { nowMs: 101, world: b.ledger.world(), policy })).toEqual({
      kind: 'wait',
      message: null,
      untilMs: 100 + policy.baseMs,
    });
  });

  it('sends a new goal at once even while an older attempt is in flight', () => {
    const b = bed();
    const id = b.createVm();
    b.settle();
    b.ledger.commit(decideStopVm(b.vm(id), b.ctx(1)));
    const sentStop = plan(b.vm(id), { nowMs: 1, world: b.ledger.world(), policy });
    expect(sentStop).toMatchObject({ kind: 'send', command: { power: 'stopped' } });
  });
});
