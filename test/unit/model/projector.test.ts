/**
 * Goal: the projector folds every event into the row the api, the main loop and the checkers
 * read: state through the lifecycle machines (including settling on the current observation),
 * transitioning fields, attempts bookkeeping, the last failure reason kept through progress,
 * renames, tombstones, version-only events (storage changes, clone registrations), access key
 * lookups, usage totals; it is pure (never mutates its input) and old schema versions are upcast
 * through the registry.
 *
 * Method: examples over the Ledger test bed (real projector, JSON round trip as a store does), and
 * a direct test of the upcasting hook with an injected registry.
 */
import { describe, expect, it } from 'vitest';
import {
  decideCreateVm,
  decideSnapshotVolume,
  decideStartVm,
  decideStopVm,
} from '../../../src/model/decide.ts';
import { newEvent, upcast } from '../../../src/model/events.ts';
import { createProjector, projector } from '../../../src/model/projector.ts';
import {
  BYTES_PER_GB,
  type HostRow,
  type VmRow,
  type VolumeRow,
} from '../../../src/model/resources.ts';
import type { StoredEvent } from '../../../src/model/stream.ts';
import { Agents, addHost, CountingIds, Ledger } from './harness.ts';

function setup() {
  const ledger = new Ledger();
  const ids = new CountingIds();
  const agents = new Agents(ledger);
  const compute = addHost(ledger, agents, ids, { kind: 'compute', vcpus: 8, memoryMb: 16384 });
  const storage = addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 1000 });
  const vmId = ledger.commit(
    decideCreateVm(
      { accountId: 'acct-1', name: 'web', imageId: 'img-00000001', vcpus: 2, memoryMb: 1024 },
      { nowMs: 10, ids },
    ),
  );
  const vm = () => ledger.row(vmId) as VmRow;
  return { ledger, ids, compute, storage, vmId, vm };
}

describe('projector: virtual machines', () => {
  it('creates a VM in creating with its root volume in the same batch', () => {
    const { ledger, vm } = setup();
    const row = vm();
    expect(row).toMatchObject({
      state: 'creating',
      transitioning: 'yes',
      desired: 'running',
      rev: 1,
      created: 10,
      removed: null,
      hostId: null,
      attempts: 0,
    });
    const root = ledger.row(row.rootVolumeId) as VolumeRow;
    expect(root).toMatchObject({
      state: 'creating',
      root: true,
      virtualMachineId: row.id,
      sizeGb: 40,
    });
  });

  it('moves through starting to running from observations of its own host only', () => {
    const { ledger, compute, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    ledger.emit(vmId, 'vm.observed', { hostId: 'host-other', domain: 'running', disks: null }, 21);
    expect(vm().state).toBe('creating');
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'shutoff', disks: null }, 22);
    expect(vm().state).toBe('starting');
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'running', disks: null }, 23);
    expect(vm()).toMatchObject({
      state: 'running',
      transitioning: 'no',
      transitioningMessage: null,
    });
  });

  it('settles on the current observation when the user changes their mind', () => {
    const { ledger, compute, vmId, vm, ids } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'running', disks: null }, 21);
    ledger.commit(decideStopVm(vm(), { nowMs: 30, ids }));
    expect(vm()).toMatchObject({ state: 'stopping', desired: 'stopped' });
    // Nothing was observed in between: the domain still runs, so start means running at once.
    ledger.commit(decideStartVm(vm(), { nowMs: 31, ids }));
    expect(vm()).toMatchObject({ state: 'running', desired: 'running' });
  });

  it('keeps attempt bookkeeping and resets it on progress or a new request', () => {
    const { ledger, compute, vmId, vm, ids } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    const sent = {
      commandId: 'cmd-1',
      command: 'vm.ensure',
      hostId: compute,
      attempt: 3,
      nextAttemptAtMs: 9000,
      token: 7,
      goal: 'running:x',
    };
    ledger.emit(vmId, 'vm.command-sent', sent, 25);
    expect(vm()).toMatchObject({
      attempts: 3,
      nextAttemptAtMs: 9000,
      transitioningMessage: 'no answer from the host yet: sent again (attempt 3)',
    });
    expect(vm().lastCommand).toMatchObject({
      commandId: 'cmd-1',
      token: 7,
      sentAtMs: 25,
      goal: 'running:x',
    });
    ledger.emit(
      vmId,
      'vm.command-reported',
      { commandId: 'cmd-1', ok: false, error: 'out-of-memory' },
      26,
    );
    expect(vm().lastError).toBe('out-of-memory');
    ledger.emit(vmId, 'vm.failed', { reason: 'gave up: out-of-memory' }, 27);
    expect(vm()).toMatchObject({
      state: 'error',
      transitioning: 'error',
      transitioningMessage: 'gave up: out-of-memory',
      lastError: 'gave up: out-of-memory',
    });
    ledger.commit(decideStartVm(vm(), { nowMs: 40, ids }));
    expect(vm()).toMatchObject({
      state: 'starting',
      attempts: 0,
      nextAttemptAtMs: null,
      lastError: null,
    });
  });

  it('keeps the failure reason through progress until the VM settles or the user asks again', () => {
    const { ledger, compute, vmId, vm, ids } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    const sent = (commandId: string, attempt: number, atMs: number) =>
      ledger.emit(
        vmId,
        'vm.command-sent',
        {
          commandId,
          command: 'vm.ensure',
          hostId: compute,
          attempt,
          nextAttemptAtMs: atMs + 1000,
          token: 1,
          goal: 'running:x',
        },
        atMs,
      );
    sent('cmd-1', 1, 21);
    // Out of memory: the domain got defined but did not start. The result lands first, then the
    // inventory moves the VM from creating to starting at the same moment.
    ledger.emit(
      vmId,
      'vm.command-reported',
      { commandId: 'cmd-1', ok: false, error: 'out-of-memory' },
      22,
    );
    expect(vm()).toMatchObject({ state: 'creating', transitioningMessage: 'out-of-memory' });
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'shutoff', disks: null }, 22);
    expect(vm()).toMatchObject({
      state: 'starting',
      transitioning: 'yes',
      lastError: 'out-of-memory',
      transitioningMessage: 'out-of-memory',
      // Progress still earns a fresh budget of attempts.
      attempts: 0,
      nextAttemptAtMs: null,
    });
    sent('cmd-2', 1, 30);
    expect(vm()).toMatchObject({
      lastError: 'out-of-memory',
      transitioningMessage: 'retrying (attempt 1) after: out-of-memory',
    });
    // Success clears it.
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'running', disks: null }, 31);
    expect(vm()).toMatchObject({ state: 'running', lastError: null, transitioningMessage: null });

    // The inventory first, then the result: the reason shows as well; a new request clears it.
    ledger.commit(decideStopVm(vm(), { nowMs: 40, ids }));
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'shutoff', disks: null }, 41);
    ledger.commit(decideStartVm(vm(), { nowMs: 42, ids }));
    sent('cmd-3', 1, 43);
    ledger.emit(
      vmId,
      'vm.command-reported',
      { commandId: 'cmd-3', ok: false, error: 'out-of-memory' },
      44,
    );
    expect(vm()).toMatchObject({ state: 'starting', transitioningMessage: 'out-of-memory' });
    ledger.commit(decideStopVm(vm(), { nowMs: 45, ids }));
    expect(vm()).toMatchObject({ state: 'stopped', lastError: null, transitioningMessage: null });
  });

  it('renames without touching state or attempt bookkeeping', () => {
    const { ledger, compute, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    ledger.emit(
      vmId,
      'vm.command-sent',
      {
        commandId: 'cmd-1',
        command: 'vm.ensure',
        hostId: compute,
        attempt: 2,
        nextAttemptAtMs: 900,
        token: 1,
        goal: 'running:x',
      },
      21,
    );
    const before = vm();
    ledger.emit(vmId, 'vm.renamed', { name: 'web-2' }, 22);
    expect(vm()).toEqual({ ...before, name: 'web-2', rev: before.rev + 1 });
    const root = before.rootVolumeId;
    ledger.emit(root, 'volume.renamed', { name: 'root-disk' }, 23);
    expect(ledger.row(root)).toMatchObject({ name: 'root-disk', state: 'creating' });
  });

  it('keeps a removed VM as a tombstone', () => {
    const { ledger, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.delete-requested', {}, 50);
    expect(vm()).toMatchObject({ state: 'deleting', desired: 'deleted' });
    ledger.emit(vmId, 'vm.removed', {}, 60);
    expect(vm()).toMatchObject({ state: 'removed', removed: 60, transitioning: 'no' });
  });

  it('tracks extra volumes in attach order', () => {
    const { ledger, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.volume-attached', { volumeId: 'vol-b' }, 1);
    ledger.emit(vmId, 'vm.volume-attached', { volumeId: 'vol-a' }, 2);
    ledger.emit(vmId, 'vm.volume-attached', { volumeId: 'vol-b' }, 3);
    expect(vm().volumeIds).toEqual(['vol-b', 'vol-a']);
    ledger.emit(vmId, 'vm.volume-detached', { volumeId: 'vol-b' }, 4);
    expect(vm().volumeIds).toEqual(['vol-a']);
  });

  it('folds a storage change into the version only', () => {
    const { ledger, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.volume-attached', { volumeId: 'vol-a' }, 1);
    const before = vm();
    ledger.emit(vmId, 'vm.storage-changed', { volumeId: 'vol-a', extraGb: 700 }, 2);
    expect(vm()).toEqual({ ...before, rev: before.rev + 1 });
  });
});

describe('projector: volumes and snapshots', () => {
  it('is ready only at the desired size, then grows and returns to attached', () => {
    const { ledger, storage, vm } = setup();
    const volId = vm().rootVolumeId;
    const vol = () => ledger.row(volId) as VolumeRow;
    ledger.emit(volId, 'volume.placed', { storageNodeId: storage }, 20);
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: 2 * BYTES_PER_GB, origin: null },
      21,
    );
    expect(vol().state).toBe('creating');
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: 40 * BYTES_PER_GB, origin: null },
      22,
    );
    expect(vol().state).toBe('attached');
    ledger.emit(volId, 'volume.grow-requested', { sizeGb: 50 }, 23);
    expect(vol()).toMatchObject({ state: 'growing', sizeGb: 50 });
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: 50 * BYTES_PER_GB, origin: null },
      24,
    );
    expect(vol().state).toBe('attached');
  });

  it('finishes a restore only on the ok result of the restore command', () => {
    const { ledger, storage, vm } = setup();
    const volId = vm().rootVolumeId;
    const vol = () => ledger.row(volId) as VolumeRow;
    ledger.emit(volId, 'volume.placed', { storageNodeId: storage }, 20);
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: null, origin: null },
      21,
    );
    ledger.emit(volId, 'volume.restore-requested', { snapshotId: 'snap-1' }, 22);
    expect(vol()).toMatchObject({ state: 'restoring', restoreSnapshotId: 'snap-1' });
    const sent = {
      commandId: 'cmd-9',
      command: 'volume.restore',
      hostId: storage,
      attempt: 1,
      nextAttemptAtMs: 99,
      token: 3,
      goal: 'restore:snap-1',
    };
    ledger.emit(volId, 'volume.command-sent', sent, 23);
    ledger.emit(
      volId,
      'volume.command-reported',
      { commandId: 'cmd-other', ok: true, error: null },
      24,
    );
    expect(vol().state).toBe('restoring');
    ledger.emit(
      volId,
      'volume.command-reported',
      { commandId: 'cmd-9', ok: true, error: null },
      25,
    );
    expect(vol()).toMatchObject({ state: 'attached', restoreSnapshotId: null });
  });

  it('turns a vanished dataset into an error with a reason', () => {
    const { ledger, storage, vm } = setup();
    const volId = vm().rootVolumeId;
    ledger.emit(volId, 'volume.placed', { storageNodeId: storage }, 20);
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: null, origin: null },
      21,
    );
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: false, sizeBytes: null, origin: null },
      22,
    );
    expect(ledger.row(volId)).toMatchObject({ state: 'error', transitioning: 'error' });
    expect(ledger.row(volId).lastError).toMatch(/vanished/);
  });

  it('makes a snapshot available once observed on its node', () => {
    const { ledger, storage, vm, ids } = setup();
    const volId = vm().rootVolumeId;
    ledger.emit(volId, 'volume.placed', { storageNodeId: storage }, 20);
    ledger.emit(
      volId,
      'volume.observed',
      { storageNodeId: storage, present: true, sizeBytes: null, origin: null },
      21,
    );
    const snapId = ledger.commit(
      decideSnapshotVolume(ledger.row(volId) as VolumeRow, { name: 's' }, { nowMs: 30, ids }),
    );
    expect(ledger.row(snapId)).toMatchObject({
      state: 'creating',
      storageNodeId: storage,
      sizeGb: 40,
    });
    ledger.emit(
      snapId,
      'snapshot.observed',
      { storageNodeId: storage, present: true, sizeBytes: 1 },
      31,
    );
    expect(ledger.row(snapId)).toMatchObject({ state: 'available', transitioning: 'no' });
    const before = ledger.row(snapId);
    ledger.emit(snapId, 'snapshot.clone-registered', { volumeId: 'vol-c' }, 32);
    expect(ledger.row(snapId)).toEqual({ ...before, rev: before.rev + 1 });
  });
});

describe('projector: hosts, keys, usage', () => {
  it('registers, comes up, goes down and back, and evacuates in maintenance', () => {
    const ledger = new Ledger();
    const ids = new CountingIds();
    const agents = new Agents(ledger);
    const h = addHost(ledger, agents, ids, { kind: 'compute', vcpus: 4, memoryMb: 4096 });
    const host = () => ledger.row(h) as HostRow;
    expect(host()).toMatchObject({ state: 'active', online: true, observed: { vcpus: 4 } });
    ledger.emit(h, 'host.down', { lastSeenMs: 5 }, 10);
    expect(host()).toMatchObject({ state: 'down', online: false });
    ledger.emit(h, 'host.maintenance-requested', {}, 11);
    expect(host()).toMatchObject({ state: 'maintenance', transitioningMessage: 'evacuating' });
    ledger.emit(h, 'host.activate-requested', {}, 12);
    expect(host().state).toBe('down'); // activated while offline: down until it reports
    ledger.emit(h, 'host.up', { vcpus: 4, memoryMb: 4096, poolSizeBytes: null }, 13);
    expect(host().state).toBe('active');
    const rev = host().rev;
    ledger.emit(h, 'host.placement-recorded', { resourceId: 'vm-1' }, 14);
    expect(host()).toMatchObject({ state: 'active', rev: rev + 1 });
    ledger.emit(h, 'host.removed', {}, 15);
    expect(host()).toMatchObject({ state: 'removed', removed: 15 });
  });

  it('sums usage per metric and remembers how far each resource was counted', () => {
    const ledger = new Ledger();
    const rec = (
      resourceId: string,
      metric: 'vm-hours' | 'gb-hours',
      quantity: number,
      toMs: number,
    ) =>
      ledger.emit(
        'usage-acct-1',
        'usage.recorded',
        {
          accountId: 'acct-1',
          resourceId,
          resourceType: 'virtualMachine',
          metric,
          quantity,
          fromMs: 0,
          toMs,
        },
        toMs,
      );
    rec('vm-1', 'vm-hours', 1.5, 100);
    rec('vm-1', 'vm-hours', 0.5, 200);
    rec('vol-1', 'gb-hours', 40, 150);
    expect(ledger.rows.get('usage-acct-1')).toMatchObject({
      type: 'usage',
      accountId: 'acct-1',
      version: 3,
    });
    expect(ledger.row('usage-acct-1')).toMatchObject({
      totals: { 'vm-hours': 2, 'gb-hours': 40 },
      records: 3,
      recordedUntilMs: { 'vm-1': 200, 'vol-1': 150 },
    });
  });

  it('renames hosts, accounts and keys; removes accounts into tombstones', () => {
    const ledger = new Ledger();
    const ids = new CountingIds();
    const agents = new Agents(ledger);
    const h = addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 100 });
    ledger.emit(h, 'host.renamed', { name: 'store-a' }, 5);
    expect(ledger.row(h)).toMatchObject({ name: 'store-a', state: 'active', online: true });
    ledger.append([
      {
        stream: 'acct-1',
        expectedVersion: 0,
        events: [newEvent('account.created', { name: 'a', kind: 'user' }, { atMs: 1 })],
      },
    ]);
    ledger.emit('acct-1', 'account.renamed', { name: 'b' }, 2);
    expect(ledger.row('acct-1')).toMatchObject({ name: 'b', state: 'active', rev: 2 });
    ledger.emit('acct-1', 'account.removed', {}, 3);
    expect(ledger.row('acct-1')).toMatchObject({
      name: 'b',
      state: 'removed',
      desired: 'deleted',
      removed: 3,
    });
  });

  it('folds an access key lookup, once', () => {
    const ledger = new Ledger();
    ledger.append([
      {
        stream: 'accesskey-abc',
        expectedVersion: 0,
        events: [newEvent('accesskey.claimed', { keyId: 'key-1' }, { atMs: 1 })],
      },
    ]);
    expect(ledger.rows.get('accesskey-abc')).toMatchObject({ type: 'accessKey', accountId: null });
    expect(ledger.row('accesskey-abc')).toMatchObject({ keyId: 'key-1', state: 'active' });
    expect(() => ledger.emit('accesskey-abc', 'accesskey.claimed', { keyId: 'key-2' }, 2)).toThrow(
      /unexpected accesskey.claimed/,
    );
  });

  it('revokes an api key into a tombstone', () => {
    const ledger = new Ledger();
    ledger.append([
      {
        stream: 'key-1',
        expectedVersion: 0,
        events: [
          newEvent(
            'apikey.created',
            { accountId: 'acct-1', name: 'k', publicValue: 'AK', secretHash: 'h', salt: 's' },
            { atMs: 1 },
          ),
        ],
      },
    ]);
    expect(ledger.rows.get('key-1')).toMatchObject({ type: 'apiKey', accountId: 'acct-1' });
    ledger.emit('key-1', 'apikey.renamed', { name: 'ci' }, 2);
    expect(ledger.row('key-1')).toMatchObject({ name: 'ci', state: 'active' });
    ledger.emit('key-1', 'apikey.revoked', {}, 3);
    expect(ledger.row('key-1')).toMatchObject({ state: 'removed', removed: 3, name: 'ci' });
  });
});

describe('projector: purity and schema versions', () => {
  const created: StoredEvent = {
    stream: 'acct-1',
    version: 1,
    position: 1,
    type: 'account.created',
    schemaVersion: 1,
    data: { name: 'a', kind: 'user' },
    meta: { atMs: 5 },
  };

  it('never mutates its inputs and is deterministic', () => {
    const frozen = Object.freeze({ ...created, data: Object.freeze({ ...created.data }) });
    const a = projector(null, frozen);
    const b = projector(null, frozen);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ stream: 'acct-1', type: 'account', accountId: 'acct-1', version: 1 });
  });

  it('rejects an event out of version order', () => {
    const row = projector(null, created);
    expect(() => projector(row, { ...created, version: 3 })).toThrow(/v3 after v1/);
  });

  it('upcasts old schema versions through the registry, and refuses newer ones', () => {
    const registry = {
      versions: { 'account.created': 2 },
      upcasters: {
        // v1 had `title`; v2 calls it `name`.
        'account.created': {
          1: (d: StoredEvent['data']) => ({ name: d['title'] ?? null, kind: d['kind'] ?? null }),
        },
      },
    };
    const old: StoredEvent = { ...created, data: { title: 'legacy', kind: 'admin' } };
    expect(upcast(old, registry)).toMatchObject({
      schemaVersion: 2,
      data: { name: 'legacy', kind: 'admin' },
    });
    const row = createProjector(registry)(null, old);
    expect(row?.data).toMatchObject({ name: 'legacy', kind: 'admin' });
    // Current events pass through unchanged (the same object).
    expect(upcast(created)).toBe(created);
    expect(() => upcast({ ...created, schemaVersion: 2 })).toThrow(/newer than this code/);
  });
});

describe('projector: observations from other hosts', () => {
  it('keeps the current host observation when an unrelated host reports the VM absent', () => {
    const { ledger, compute, vmId, vm } = setup();
    ledger.emit(vmId, 'vm.placed', { hostId: compute }, 20);
    ledger.emit(vmId, 'vm.observed', { hostId: compute, domain: 'running', disks: null }, 21);
    ledger.emit(vmId, 'vm.observed', { hostId: 'host-old', domain: 'absent', disks: null }, 22);
    expect(vm()).toMatchObject({
      state: 'running',
      observed: { hostId: compute, domain: 'running' },
    });
    // A domain still present elsewhere is a fact worth recording (it must be cleaned up).
    ledger.emit(vmId, 'vm.observed', { hostId: 'host-old', domain: 'running', disks: null }, 23);
    expect(vm().observed).toMatchObject({ hostId: 'host-old', domain: 'running' });
    // …and its disappearance from there too.
    ledger.emit(vmId, 'vm.observed', { hostId: 'host-old', domain: 'absent', disks: null }, 24);
    expect(vm().observed).toMatchObject({ hostId: 'host-old', domain: 'absent' });
  });
});
