/**
 * Goal: each decide function returns the documented appends for a valid request (one atomic batch,
 * expected versions from the rows) and the documented GDAPI error otherwise: ActionNotAvailable
 * when the state's machine refuses the action, InvalidState for cross-resource rules (VM not
 * stopped, dependents, non-empty host, an account that still owns resources), limits, name rules,
 * uniqueness and references; and that two writes whose rules read each other's rows (grows of one
 * VM's volumes; a clone and a delete of one snapshot) write a common stream, so the second
 * conflicts and, decided again, is refused.
 *
 * Method: examples over the Ledger test bed with the real projector.
 */
import { describe, expect, it } from 'vitest';
import * as d from '../../../src/model/decide.ts';
import {
  accessKeyStreamId,
  LIMITS,
  type AccountRow,
  type ApiKeyRow,
  type HostRow,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../../../src/model/resources.ts';
import { Agents, addHost, Conflict, CountingIds, Ledger, reconcileAll } from './harness.ts';

function bed() {
  const ledger = new Ledger();
  const ids = new CountingIds();
  const agents = new Agents(ledger);
  const compute = addHost(ledger, agents, ids, { kind: 'compute', vcpus: 8, memoryMb: 8192 });
  addHost(ledger, agents, ids, { kind: 'storage', poolSizeGb: 3000 });
  const ctx = { nowMs: 5, ids, actor: 'api:acct-1', correlationId: 'req-1' };
  const vmInput = {
    accountId: 'acct-1',
    name: 'web',
    imageId: 'img-00000001',
    vcpus: 2,
    memoryMb: 1024,
  };
  return {
    ledger,
    ids,
    agents,
    compute,
    ctx,
    vmInput,
    settle: () => reconcileAll(ledger, agents, ids, 5),
  };
}

function errorOf(decision: d.Decision) {
  expect(decision.ok).toBe(false);
  return decision.ok ? undefined : decision.error;
}

describe('decide: virtual machines', () => {
  it('creates the VM, its root volume and its extra volumes in one batch', () => {
    const { ctx, vmInput } = bed();
    const decision = d.decideCreateVm(
      { ...vmInput, volumes: [{ sizeGb: 10 }, { name: 'logs', sizeGb: 20 }] },
      ctx,
    );
    expect(decision.ok).toBe(true);
    if (!decision.ok) return;
    expect(decision.appends.map((a) => [a.expectedVersion, a.events.map((e) => e.type)])).toEqual([
      [0, ['vm.created']],
      [0, ['volume.created']],
      [0, ['volume.created']],
      [0, ['volume.created']],
    ]);
    const vm = decision.appends[0]!.events[0]!;
    expect(vm.data).toMatchObject({
      rootDiskGb: 40,
      desired: 'running',
      volumeIds: [decision.appends[2]!.stream, decision.appends[3]!.stream],
    });
    expect(vm.meta).toEqual({ atMs: 5, actor: 'api:acct-1', correlationId: 'req-1' });
    expect(decision.appends[3]!.events[0]!.data).toMatchObject({
      name: 'logs',
      virtualMachineId: decision.id,
      root: false,
    });
  });

  it('refuses unknown images, small root disks and too much extra storage', () => {
    const { ctx, vmInput } = bed();
    expect(errorOf(d.decideCreateVm({ ...vmInput, imageId: 'img-nope' }, ctx))).toMatchObject({
      code: 'InvalidReference',
      fieldName: 'imageId',
    });
    expect(
      errorOf(d.decideCreateVm({ ...vmInput, imageId: 'img-00000005', rootDiskGb: 10 }, ctx)),
    ).toMatchObject({ code: 'MinLimitExceeded', fieldName: 'rootDiskGb' });
    expect(
      errorOf(d.decideCreateVm({ ...vmInput, volumes: [{ sizeGb: 1000 }, { sizeGb: 230 }] }, ctx)),
    ).toMatchObject({ code: 'MaxLimitExceeded', fieldName: 'volumes' });
    expect(
      d.decideCreateVm({ ...vmInput, volumes: [{ sizeGb: 1000 }, { sizeGb: 229 }] }, ctx).ok,
    ).toBe(true);
    expect(
      errorOf(d.decideCreateVm({ ...vmInput, memoryMb: LIMITS.memoryMbMax + 1 }, ctx)),
    ).toMatchObject({ code: 'MaxLimitExceeded', fieldName: 'memoryMb' });
  });

  it('offers actions by state and answers ActionNotAvailable otherwise', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const id = ledger.commit(d.decideCreateVm(vmInput, ctx));
    const vm = () => ledger.row(id) as VmRow;
    expect(errorOf(d.decideStartVm(vm(), ctx))).toMatchObject({ code: 'ActionNotAvailable' });
    settle();
    expect(vm().state).toBe('running');
    expect(errorOf(d.decideStartVm(vm(), ctx))?.message).toMatch(/available: restart, stop/);
    const stop = d.decideStopVm(vm(), ctx);
    expect(stop.ok && stop.appends).toEqual([
      {
        stream: id,
        expectedVersion: vm().rev,
        events: [expect.objectContaining({ type: 'vm.stop-requested' })],
      },
    ]);
  });

  it('refuses to delete a VM whose root volume has cloned snapshots', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const id = ledger.commit(d.decideCreateVm(vmInput, ctx));
    settle();
    const root = ledger.row((ledger.row(id) as VmRow).rootVolumeId) as VolumeRow;
    const snap = ledger.commit(d.decideSnapshotVolume(root, { name: 's' }, ctx));
    settle();
    const clone = ledger.commit(
      d.decideCreateVolume(
        { accountId: 'acct-1', name: 'c', sourceSnapshotId: snap },
        ledger.row(snap) as never,
        ctx,
      ),
    );
    const refused = errorOf(
      d.decideDeleteVm(
        ledger.row(id) as VmRow,
        { snapshots: ledger.list('snapshot'), volumes: ledger.list('volume') },
        ctx,
      ),
    );
    expect(refused).toMatchObject({ code: 'InvalidState' });
    expect(refused?.message).toContain(clone);
  });

  it('refuses a snapshot of, or a clone from, the root volume of a VM being deleted', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const id = ledger.commit(d.decideCreateVm(vmInput, ctx));
    settle();
    const rootId = (ledger.row(id) as VmRow).rootVolumeId;
    const snap = ledger.commit(
      d.decideSnapshotVolume(ledger.row(rootId) as VolumeRow, { name: 's' }, ctx),
    );
    settle();
    const none = { snapshots: [], volumes: [] };
    ledger.commit(d.decideDeleteVm(ledger.row(id) as VmRow, none, ctx));
    const root = ledger.row(rootId) as VolumeRow;
    const vm = ledger.row(id) as VmRow;
    expect(root.state).toBe('attached'); // the cascade comes once the domain is gone
    const snapshot = errorOf(d.decideSnapshotVolume(root, { name: 't' }, ctx, vm));
    expect(snapshot).toMatchObject({ code: 'InvalidState' });
    expect(snapshot?.message).toContain(`root volume of ${id}, which is being deleted`);
    const clone = errorOf(
      d.decideCreateVolume(
        { accountId: 'acct-1', name: 'c', sourceSnapshotId: snap },
        ledger.row(snap) as SnapshotRow,
        ctx,
        { volume: root, vm },
      ),
    );
    expect(clone).toMatchObject({ code: 'InvalidState', fieldName: 'sourceSnapshotId' });
  });
});

describe('decide: volumes', () => {
  it('attaches only to a stopped VM of the same account within the extra storage limit', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const vmId = ledger.commit(d.decideCreateVm({ ...vmInput, volumes: [{ sizeGb: 1200 }] }, ctx));
    const big = ledger.commit(
      d.decideCreateVolume({ accountId: 'acct-1', name: 'big', sizeGb: 30 }, null, ctx),
    );
    const other = ledger.commit(
      d.decideCreateVolume({ accountId: 'acct-2', name: 'x', sizeGb: 1 }, null, ctx),
    );
    settle();
    const vm = () => ledger.row(vmId) as VmRow;
    const vol = (id: string) => ledger.row(id) as VolumeRow;
    const extras = () => ledger.list('volume').filter((v) => vm().volumeIds.includes(v.id));
    expect(errorOf(d.decideAttachVolume(vol(big), vm(), extras(), ctx))?.message).toMatch(
      /must be stopped/,
    );
    ledger.commit(d.decideStopVm(vm(), ctx));
    settle();
    expect(errorOf(d.decideAttachVolume(vol(big), vm(), extras(), ctx))).toMatchObject({
      code: 'MaxLimitExceeded',
    });
    expect(errorOf(d.decideAttachVolume(vol(other), vm(), extras(), ctx))).toMatchObject({
      code: 'InvalidReference',
    });
    const root = vol(vm().rootVolumeId);
    expect(errorOf(d.decideDetachVolume(root, vm(), ctx))?.message).toMatch(
      /root volume cannot be detached/,
    );
    expect(
      errorOf(d.decideDeleteVolume(root, { snapshots: [], volumes: [] }, ctx))?.message,
    ).toMatch(/deleted with its VM/);
    expect(
      errorOf(d.decideDeleteVolume(vol(vm().volumeIds[0]!), { snapshots: [], volumes: [] }, ctx))
        ?.message,
    ).toMatch(/detach it first/);
  });

  it('grows only upward and restores only the most recent snapshot', () => {
    const { ledger, ctx, settle } = bed();
    const id = ledger.commit(
      d.decideCreateVolume({ accountId: 'acct-1', name: 'v', sizeGb: 10 }, null, ctx),
    );
    settle();
    const vol = () => ledger.row(id) as VolumeRow;
    expect(errorOf(d.decideGrowVolume(vol(), 10, { vm: null, vmVolumes: [] }, ctx))).toMatchObject({
      code: 'MinLimitExceeded',
      fieldName: 'sizeGb',
    });
    const s1 = ledger.commit(d.decideSnapshotVolume(vol(), { name: 's1' }, { ...ctx, nowMs: 6 }));
    const s2 = ledger.commit(d.decideSnapshotVolume(vol(), { name: 's2' }, { ...ctx, nowMs: 7 }));
    settle();
    const snaps = ledger.list('snapshot');
    expect(d.latestSnapshot(id, snaps)?.id).toBe(s2);
    expect(
      errorOf(d.decideRestoreVolume(vol(), s1, { snapshots: snaps, vm: null }, ctx))?.message,
    ).toMatch(/most recent/);
    expect(
      errorOf(d.decideRestoreVolume(vol(), 'snap-x', { snapshots: snaps, vm: null }, ctx)),
    ).toMatchObject({ code: 'InvalidReference' });
    expect(d.decideRestoreVolume(vol(), s2, { snapshots: snaps, vm: null }, ctx).ok).toBe(true);
  });

  it('clones a snapshot onto its node, at least its size', () => {
    const { ledger, ctx, settle } = bed();
    const id = ledger.commit(
      d.decideCreateVolume({ accountId: 'acct-1', name: 'v', sizeGb: 10 }, null, ctx),
    );
    settle();
    const s = ledger.commit(
      d.decideSnapshotVolume(ledger.row(id) as VolumeRow, { name: 's' }, ctx),
    );
    const snapRow = () => ledger.row(s) as never;
    expect(
      errorOf(
        d.decideCreateVolume(
          { accountId: 'acct-1', name: 'c', sourceSnapshotId: s },
          snapRow(),
          ctx,
        ),
      ),
    ).toMatchObject({ code: 'InvalidState' });
    settle();
    expect(
      errorOf(
        d.decideCreateVolume(
          { accountId: 'acct-1', name: 'c', sourceSnapshotId: s, sizeGb: 5 },
          snapRow(),
          ctx,
        ),
      ),
    ).toMatchObject({ code: 'MinLimitExceeded' });
    expect(
      errorOf(
        d.decideCreateVolume(
          { accountId: 'acct-2', name: 'c', sourceSnapshotId: s },
          snapRow(),
          ctx,
        ),
      ),
    ).toMatchObject({ code: 'InvalidReference' });
    const ok = d.decideCreateVolume(
      { accountId: 'acct-1', name: 'c', sourceSnapshotId: s },
      snapRow(),
      ctx,
    );
    expect(ok.ok && ok.appends[0]!.events[0]!.data).toMatchObject({
      sizeGb: 10,
      sourceSnapshotId: s,
      storageNodeId: (ledger.row(id) as VolumeRow).storageNodeId,
    });
  });
});

describe('decide: concurrent writes that share a rule conflict on a common stream', () => {
  it('two grows of one VM’s volumes: the second is decided again and refused', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const vmId = ledger.commit(
      d.decideCreateVm({ ...vmInput, volumes: [{ sizeGb: 600 }, { sizeGb: 500 }] }, ctx),
    );
    settle();
    const vm = () => ledger.row(vmId) as VmRow;
    const [x, y] = vm().volumeIds as [string, string];
    const grow = (id: string, sizeGb: number) =>
      d.decideGrowVolume(
        ledger.row(id) as VolumeRow,
        sizeGb,
        { vm: vm(), vmVolumes: vm().volumeIds.map((v) => ledger.row(v) as VolumeRow) },
        ctx,
      );
    // Both decided on the same rows: each alone keeps the 1229 GB rule.
    const first = grow(x, 700);
    const second = grow(y, 600);
    expect(first.ok && first.appends.map((a) => [a.stream, a.expectedVersion])).toEqual([
      [x, ledger.row(x).rev],
      [vmId, vm().rev],
    ]);
    expect(first.ok && first.appends[1]!.events[0]).toMatchObject({
      type: 'vm.storage-changed',
      data: { volumeId: x, extraGb: 1200 },
    });
    ledger.commit(first);
    expect(() => ledger.commit(second)).toThrow(Conflict);
    expect(errorOf(grow(y, 600))).toMatchObject({ code: 'MaxLimitExceeded', fieldName: 'sizeGb' });
    // A root volume is outside the rule: its grow writes only its own stream.
    const root = grow(vm().rootVolumeId, 50);
    expect(root.ok && root.appends.map((a) => a.stream)).toEqual([vm().rootVolumeId]);
  });

  it('a clone and a delete of one snapshot: whichever commits second is refused', () => {
    const world = () => {
      const { ledger, ctx, settle } = bed();
      const vol = ledger.commit(
        d.decideCreateVolume({ accountId: 'acct-1', name: 'v', sizeGb: 10 }, null, ctx),
      );
      settle();
      const snap = ledger.commit(
        d.decideSnapshotVolume(ledger.row(vol) as VolumeRow, { name: 's' }, ctx),
      );
      settle();
      const snapshot = () => ledger.row(snap) as SnapshotRow;
      return {
        ledger,
        snap,
        snapshot,
        clone: () =>
          d.decideCreateVolume(
            { accountId: 'acct-1', name: 'c', sourceSnapshotId: snap },
            snapshot(),
            ctx,
          ),
        remove: () => d.decideDeleteSnapshot(snapshot(), ledger.list('volume'), ctx),
      };
    };

    // Delete first: the clone conflicts, then finds the snapshot being deleted.
    const a = world();
    const cloned = a.clone();
    const deleted = a.remove();
    if (!cloned.ok) throw new Error('the clone alone is valid');
    expect(cloned.appends[1]).toMatchObject({
      stream: a.snap,
      expectedVersion: a.snapshot().rev,
      events: [{ type: 'snapshot.clone-registered', data: { volumeId: cloned.id } }],
    });
    a.ledger.commit(deleted);
    expect(() => a.ledger.commit(cloned)).toThrow(Conflict);
    expect(errorOf(a.clone())).toMatchObject({ code: 'InvalidState' });

    // Clone first: the delete conflicts, then finds the clone.
    const b = world();
    const cloning = b.clone();
    const deleting = b.remove();
    const cloneId = b.ledger.commit(cloning);
    expect(() => b.ledger.commit(deleting)).toThrow(Conflict);
    expect(errorOf(b.remove())?.message).toContain(cloneId);
  });
});

describe('decide: hosts, accounts, keys', () => {
  it('requires capacity fields and unique names, and removes only empty hosts', () => {
    const { ledger, ctx, compute, vmInput, settle } = bed();
    expect(
      errorOf(d.decideCreateHost({ name: 'x', kind: 'compute', vcpus: 4 }, [], ctx)),
    ).toMatchObject({ code: 'MissingRequired', fieldName: 'memoryMb' });
    expect(
      errorOf(
        d.decideCreateHost(
          { name: 'h1', kind: 'storage', poolSizeGb: 1 },
          ledger.list('host'),
          ctx,
        ),
      ),
    ).toMatchObject({ code: 'NotUnique' });
    const vmId = ledger.commit(d.decideCreateVm(vmInput, ctx));
    settle();
    const host = () => ledger.row(compute) as HostRow;
    const placed = () => ({ vms: ledger.list('virtualMachine'), volumes: ledger.list('volume') });
    expect(errorOf(d.decideHostRemove(host(), placed(), ctx))?.message).toContain(vmId);
    expect(errorOf(d.decideHostActivate(host(), ctx))).toMatchObject({
      code: 'ActionNotAvailable',
    });
    ledger.commit(d.decideHostMaintenance(host(), ctx));
    settle();
    // Evacuated even with nowhere to go: the VM gives up with a reason and the host is empty.
    expect(ledger.row(vmId)).toMatchObject({ state: 'error', hostId: null });
    expect(ledger.row(vmId).lastError).toMatch(/no compute host/);
    expect(d.decideHostRemove(host(), placed(), ctx).ok).toBe(true);
  });

  it('stores only a salted hash of an api key secret', () => {
    const { ledger, ctx } = bed();
    const acct = ledger.commit(d.decideCreateAccount({ name: 'alice', kind: 'user' }, [], ctx));
    expect(
      errorOf(
        d.decideCreateAccount(
          { name: 'alice', kind: 'user' },
          [ledger.row(acct) as AccountRow],
          ctx,
        ),
      ),
    ).toMatchObject({ code: 'NotUnique' });
    const key = ledger.commit(
      d.decideCreateApiKey(
        { accountId: acct, name: 'k', publicValue: 'AK1', secret: 'sekrit', salt: 'salt' },
        ledger.row(acct) as AccountRow,
        [],
        ctx,
      ),
    );
    const row = ledger.row(key);
    expect(row).toMatchObject({
      accountId: acct,
      publicValue: 'AK1',
      secretHash: d.hashSecret('salt', 'sekrit'),
    });
    expect(JSON.stringify(ledger.log)).not.toContain('sekrit');
    // The access key's lookup is claimed in the same batch; a second claim conflicts.
    expect(ledger.row(accessKeyStreamId('AK1'))).toMatchObject({ type: 'accessKey', keyId: key });
    const twin = d.decideCreateApiKey(
      { accountId: acct, name: 'k2', publicValue: 'AK1', secret: 's', salt: 'x' },
      ledger.row(acct) as AccountRow,
      [],
      ctx,
    );
    expect(() => ledger.commit(twin)).toThrow(/expected 0/);
  });
});

describe('decide: renames', () => {
  it('renames any resource, validating the name as on create; the same name writes nothing', () => {
    const { ledger, ctx, vmInput } = bed();
    const vmId = ledger.commit(d.decideCreateVm(vmInput, ctx));
    const vm = () => ledger.row(vmId) as VmRow;
    const same = d.decideRename(vm(), 'web', ctx);
    expect(same).toEqual({ ok: true, id: vmId, appends: [] });
    const renamed = d.decideRename(vm(), 'web-2', ctx);
    expect(renamed.ok && renamed.appends).toEqual([
      {
        stream: vmId,
        expectedVersion: vm().rev,
        events: [expect.objectContaining({ type: 'vm.renamed', data: { name: 'web-2' } })],
      },
    ]);
    ledger.commit(renamed);
    expect(vm()).toMatchObject({ name: 'web-2', state: 'creating' });
    expect(errorOf(d.decideRename(vm(), 'web 2', ctx))).toMatchObject({
      code: 'InvalidCharacters',
      fieldName: 'name',
    });
    expect(errorOf(d.decideRename(vm(), '', ctx))).toMatchObject({ code: 'MinLengthExceeded' });
    // Account names take spaces; VM names do not.
    const acct = ledger.commit(d.decideCreateAccount({ name: 'a', kind: 'user' }, [], ctx));
    const account = ledger.row(acct) as AccountRow;
    expect(d.decideRename(account, 'Team A', ctx, [account]).ok).toBe(true);
    ledger.commit(d.decideDeleteVm(vm(), { snapshots: [], volumes: [] }, ctx));
    expect(errorOf(d.decideRename(vm(), 'web-3', ctx))).toMatchObject({ code: 'InvalidState' });
  });

  it('keeps account and host names unique among live ones', () => {
    const { ledger, ctx } = bed();
    const a = ledger.commit(d.decideCreateAccount({ name: 'a', kind: 'user' }, [], ctx));
    const b = ledger.commit(d.decideCreateAccount({ name: 'b', kind: 'user' }, [], ctx));
    const rows = () => [ledger.row(a), ledger.row(b)] as AccountRow[];
    expect(errorOf(d.decideRename(ledger.row(a) as AccountRow, 'b', ctx, rows()))).toMatchObject({
      code: 'NotUnique',
      fieldName: 'name',
    });
    expect(() => d.decideRename(ledger.row(a) as AccountRow, 'c', ctx)).toThrow(/existing rows/);
    ledger.commit(d.decideDeleteAccount(ledger.row(b) as AccountRow, noResources(rows()), ctx));
    expect(d.decideRename(ledger.row(a) as AccountRow, 'b', ctx, rows()).ok).toBe(true);
    const hosts = ledger.list('host');
    expect(
      errorOf(d.decideRename(hosts[0] as HostRow, (hosts[1] as HostRow).name, ctx, hosts)),
    ).toMatchObject({ code: 'NotUnique' });
  });
});

function noResources(accounts: readonly AccountRow[], apiKeys: readonly ApiKeyRow[] = []) {
  return { accounts, apiKeys, vms: [], volumes: [], snapshots: [] };
}

describe('decide: account deletion', () => {
  it('removes an account without live resources and revokes its live keys in one batch', () => {
    const { ledger, ctx, vmInput, settle } = bed();
    const admin = ledger.commit(d.decideCreateAccount({ name: 'root', kind: 'admin' }, [], ctx));
    const acct = ledger.commit(d.decideCreateAccount({ name: 'alice', kind: 'user' }, [], ctx));
    const account = () => ledger.row(acct) as AccountRow;
    const key = (publicValue: string) =>
      ledger.commit(
        d.decideCreateApiKey(
          { accountId: acct, name: publicValue, publicValue, secret: 's', salt: 'x' },
          account(),
          [],
          ctx,
        ),
      );
    const k1 = key('AK1');
    const k2 = key('AK2');
    ledger.commit(d.decideRevokeApiKey(ledger.row(k2) as ApiKeyRow, ctx));
    const vmId = ledger.commit(d.decideCreateVm({ ...vmInput, accountId: acct }, ctx));
    settle();
    const related = () => ({
      accounts: [ledger.row(admin), account()] as AccountRow[],
      apiKeys: [ledger.row(k1), ledger.row(k2)] as ApiKeyRow[],
      vms: ledger.list('virtualMachine'),
      volumes: ledger.list('volume'),
      snapshots: ledger.list('snapshot'),
    });
    const busy = errorOf(d.decideDeleteAccount(account(), related(), ctx));
    expect(busy).toMatchObject({ code: 'InvalidState' });
    expect(busy?.message).toContain(vmId);
    ledger.commit(d.decideDeleteVm(ledger.row(vmId) as VmRow, { snapshots: [], volumes: [] }, ctx));
    settle();
    expect(ledger.row(vmId)).toMatchObject({ state: 'removed' });
    const decision = d.decideDeleteAccount(account(), related(), ctx);
    expect(
      decision.ok && decision.appends.map((a) => [a.stream, a.events.map((e) => e.type)]),
    ).toEqual([
      [acct, ['account.removed']],
      [k1, ['apikey.revoked']],
    ]);
    ledger.commit(decision);
    expect(account()).toMatchObject({ state: 'removed', desired: 'deleted' });
    expect(ledger.row(k1)).toMatchObject({ state: 'removed' });
    expect(errorOf(d.decideDeleteAccount(account(), related(), ctx))).toMatchObject({
      code: 'InvalidState',
    });
  });

  it('never removes the last live admin account', () => {
    const { ledger, ctx } = bed();
    const a1 = ledger.commit(d.decideCreateAccount({ name: 'a1', kind: 'admin' }, [], ctx));
    const a2 = ledger.commit(d.decideCreateAccount({ name: 'a2', kind: 'admin' }, [], ctx));
    const rows = () => [ledger.row(a1), ledger.row(a2)] as AccountRow[];
    ledger.commit(d.decideDeleteAccount(ledger.row(a1) as AccountRow, noResources(rows()), ctx));
    expect(
      errorOf(d.decideDeleteAccount(ledger.row(a2) as AccountRow, noResources(rows()), ctx))
        ?.message,
    ).toMatch(/last admin/);
  });
});
