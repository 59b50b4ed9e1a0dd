// Goal: updates, deletes and actions follow GDAPI and the lifecycle — actions only where the state
// allows them (else 404 ActionNotAvailable), 409 on a stale rev (body or If-Match), idempotent PUT
// (renames, with the create rules and uniqueness; 422 naming any other field) and DELETE,
// `?_method=`, the volume and snapshot operations, admin-only hosts, account deletion only when
// empty, and accounts that never reach each other's resources (404, as if they did not exist) —
// and that nothing is written when a request fails.
// Method: createApi over the in-memory store; the main loop's part is played by appending events.

import { beforeEach, describe, expect, it } from 'vitest';
import { BASE, createWorld, type Credentials, type World } from './harness.ts';

let w: World;
let alice: Credentials;
let bob: Credentials;

beforeEach(async () => {
  w = await createWorld({ seed: 3 });
  alice = await w.newUser('alice');
  bob = await w.newUser('bob');
});

async function vmOf(who: Credentials, body: Record<string, unknown> = {}) {
  const r = await w.call('POST', '/v1/virtualmachines', {
    as: who,
    body: { name: 'web', imageId: 'img-00000001', ...body },
  });
  expect(r.status, r.body).toBe(202);
  return r.json as { id: string; rootVolumeId: string };
}

async function count() {
  return (await w.events()).length;
}

describe('actions', () => {
  it('runs an available action: 202, the new state and rev, a change notice', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const before = await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice });
    w.bus.published.length = 0;
    const r = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, { as: alice });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({
      state: 'stopping',
      desired: 'stopped',
      rev: before.json.rev + 1,
    });
    expect(r.headers['location']).toBe(`${BASE}/v1/virtualmachines/${vm.id}`);
    expect(w.bus.published.map((p) => p.message)).toEqual([
      { type: 'changed', stream: vm.id, resourceType: 'virtualMachine' },
    ]);
  });

  it('answers 404 ActionNotAvailable for an action the state does not allow, writing nothing', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const n = await count();
    const r = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=start`, { as: alice });
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ code: 'ActionNotAvailable' });
    expect(r.json.detail).toContain('stop');
    const unknown = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=fly`, { as: alice });
    expect(unknown.json.code).toBe('ActionNotAvailable');
    const snapshotAction = await w.call('POST', `/v1/accounts/${alice.accountId}?action=x`);
    expect(snapshotAction.json.code).toBe('ActionNotAvailable');
    expect(await count()).toBe(n);
  });

  it('409 on a stale rev in the body or If-Match; the current rev works', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const current = (await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice })).json;
    const n = await count();
    const stale = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, {
      as: alice,
      body: { rev: current.rev - 1 },
    });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe('Conflict');
    const staleHeader = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, {
      as: alice,
      headers: { 'if-match': `"${current.rev - 1}"` },
    });
    expect(staleHeader.status).toBe(409);
    const badHeader = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, {
      as: alice,
      headers: { 'if-match': 'yesterday' },
    });
    expect(badHeader.status).toBe(422);
    const badRev = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, {
      as: alice,
      body: { rev: 'x' },
    });
    expect(badRev.json).toMatchObject({ code: 'InvalidFormat', fieldName: 'rev' });
    expect(await count()).toBe(n);
    const ok = await w.call('POST', `/v1/virtualmachines/${vm.id}?action=stop`, {
      as: alice,
      headers: { 'if-match': `W/"${current.rev}"` },
    });
    expect(ok.status).toBe(202);
  });

  it('volume operations: attach, grow, snapshot, restore, detach', async () => {
    const vm = await vmOf(alice, { startOnCreate: false });
    await w.settleVm(vm.id, 'shutoff');
    expect((await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice })).json.state).toBe(
      'stopped',
    );
    const vol = (
      await w.call('POST', '/v1/volumes', { as: alice, body: { name: 'data', sizeGb: 10 } })
    ).json;
    await w.settleVolume(vol.id);

    const attached = await w.call('POST', `/v1/volumes/${vol.id}?action=attach`, {
      as: alice,
      body: { virtualMachineId: vm.id },
    });
    expect(attached.status, attached.body).toBe(202);
    expect(attached.json).toMatchObject({ state: 'attached', virtualMachineId: vm.id });
    expect(attached.json.links.virtualMachine).toBe(`${BASE}/v1/virtualmachines/${vm.id}`);

    const grown = await w.call('POST', `/v1/volumes/${vol.id}?action=grow`, {
      as: alice,
      body: { sizeGb: 20 },
    });
    expect(grown.json).toMatchObject({ state: 'growing', sizeGb: 20 });
    const shrink = await w.call('POST', `/v1/volumes/${vol.id}?action=grow`, {
      as: alice,
      body: { sizeGb: 20 },
    });
    expect(shrink.status).toBe(404); // growing: no further grow until it is done
    await w.settleVolume(vol.id);

    const snap = await w.call('POST', `/v1/volumes/${vol.id}?action=snapshot`, {
      as: alice,
      body: { name: 's1' },
    });
    expect(snap.status).toBe(202);
    expect(snap.json).toMatchObject({ type: 'snapshot', name: 's1', volumeId: vol.id, sizeGb: 20 });
    expect(snap.headers['location']).toBe(`${BASE}/v1/snapshots/${snap.json.id}`);
    await w.settleSnapshot(snap.json.id);

    const restored = await w.call('POST', `/v1/volumes/${vol.id}?action=restore`, {
      as: alice,
      body: { snapshotId: snap.json.id },
    });
    expect(restored.status, restored.body).toBe(202);
    expect(restored.json.state).toBe('restoring');

    const vol2 = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 1 } })).json;
    await w.settleVolume(vol2.id);
    const detachFree = await w.call('POST', `/v1/volumes/${vol2.id}?action=detach`, { as: alice });
    expect(detachFree.json.code).toBe('ActionNotAvailable');
  });

  it("refuses references to another account's resources as InvalidReference", async () => {
    const vm = await vmOf(bob, { startOnCreate: false });
    await w.settleVm(vm.id, 'shutoff');
    const vol = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 1 } })).json;
    await w.settleVolume(vol.id);
    const n = await count();
    const r = await w.call('POST', `/v1/volumes/${vol.id}?action=attach`, {
      as: alice,
      body: { virtualMachineId: vm.id },
    });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'InvalidReference', fieldName: 'virtualMachineId' });
    const snap = await w.call('POST', '/v1/snapshots', { as: bob, body: { volumeId: vol.id } });
    expect(snap.json).toMatchObject({ code: 'InvalidReference', fieldName: 'volumeId' });
    expect(await count()).toBe(n);
  });
});

describe('isolation between accounts', () => {
  it("answers another account's resource exactly as a missing one (404), for reads, writes, actions and links", async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const n = await count();
    // Ids of the same types that exist nowhere.
    const missing: Record<string, string> = {
      [vm.id]: 'vm-0badc0de',
      [alice.accountId]: 'acct-0badc0de',
      [vm.rootVolumeId]: 'vol-0badc0de',
    };
    for (const [method, path, id] of [
      ['GET', `/v1/virtualmachines/${vm.id}`, vm.id],
      ['GET', `/v1/virtualmachines/${vm.id}/volumes`, vm.id],
      ['POST', `/v1/virtualmachines/${vm.id}?action=stop`, vm.id],
      ['PUT', `/v1/virtualmachines/${vm.id}`, vm.id],
      ['DELETE', `/v1/virtualmachines/${vm.id}`, vm.id],
      ['GET', `/v1/accounts/${alice.accountId}`, alice.accountId],
      ['GET', `/v1/volumes/${vm.rootVolumeId}`, vm.rootVolumeId],
    ] as const) {
      const foreign = await w.call(method, path, { as: bob, body: {} });
      expect(foreign.status, `${method} ${path}`).toBe(404);
      const absent = await w.call(method, path.replace(id, missing[id]!), { as: bob, body: {} });
      expect(absent.status).toBe(404);
      // Word for word, but for the id itself (and the request's own correlation id).
      const strip = (r: { json: Record<string, unknown> }, x: string) =>
        JSON.stringify({ ...r.json, correlationId: undefined, id: undefined }).replaceAll(x, 'ID');
      expect(strip(foreign, id), `${method} ${path}`).toBe(strip(absent, missing[id]!));
    }
    expect(await count()).toBe(n);
    expect((await w.call('GET', `/v1/virtualmachines/${vm.id}`)).status).toBe(200);
  });

  it('keeps hosts and account management to administrators', async () => {
    const host = await w.call('POST', '/v1/hosts', {
      body: { name: 'c1', kind: 'compute', vcpus: 16, memoryMb: 65536 },
    });
    expect(host.status).toBe(201);
    expect(host.json).toMatchObject({ state: 'registering', kind: 'compute', vcpus: 16 });
    const n = await count();
    for (const [method, path, body] of [
      ['GET', '/v1/hosts', undefined],
      ['GET', `/v1/hosts/${host.json.id}`, undefined],
      ['POST', '/v1/hosts', { name: 'c2', kind: 'storage', poolSizeGb: 100 }],
      ['POST', `/v1/hosts/${host.json.id}?action=maintenance`, undefined],
      ['POST', '/v1/accounts', { name: 'mallory' }],
      ['PUT', `/v1/accounts/${alice.accountId}`, {}],
    ] as const) {
      const r = await w.call(method, path, { as: alice, body });
      expect(r.status, `${method} ${path}`).toBe(403);
    }
    expect(await count()).toBe(n);
    const keyForBob = await w.call('POST', '/v1/apikeys', {
      as: alice,
      body: { accountId: bob.accountId },
    });
    expect(keyForBob.json).toMatchObject({ code: 'InvalidReference', fieldName: 'accountId' });
    const ownKey = await w.call('POST', '/v1/apikeys', { as: alice, body: {} });
    expect(ownKey.status).toBe(201);
    expect(ownKey.json.accountId).toBe(alice.accountId);
  });

  it('runs host actions for administrators', async () => {
    const host = (
      await w.call('POST', '/v1/hosts', { body: { name: 's1', kind: 'storage', poolSizeGb: 500 } })
    ).json;
    expect(Object.keys(host.actions).sort()).toEqual(['maintenance', 'remove']);
    const m = await w.call('POST', `/v1/hosts/${host.id}?action=maintenance`);
    expect(m.status).toBe(200);
    expect(m.json.state).toBe('maintenance');
    const removed = await w.call('POST', `/v1/hosts/${host.id}?action=remove`);
    expect(removed.json).toMatchObject({ state: 'removed' });
    expect(removed.json.removed).not.toBeNull();
    expect((await w.call('DELETE', `/v1/hosts/${host.id}`)).status).toBe(405);
  });
});

describe('update (PUT)', () => {
  it('is idempotent: an echo of the resource changes nothing and answers it', async () => {
    const vm = await vmOf(alice);
    const current = (await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice })).json;
    const n = await count();
    const r = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, { as: alice, body: current });
    expect(r.status).toBe(200);
    expect(r.json).toEqual(current);
    const partial = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: current.name },
    });
    expect(partial.status).toBe(200);
    const viaForm = await w.call('POST', `/v1/virtualmachines/${vm.id}?_method=PUT`, {
      as: alice,
      raw: `name=${current.name}`,
      // A form on the API's own page: the browser names the page's origin.
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
    });
    expect(viaForm.status).toBe(200);
    expect(await count()).toBe(n);
  });

  it('refuses changes of fields that cannot be updated, and a stale rev', async () => {
    const vm = await vmOf(alice);
    const n = await count();
    const r = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { vcpus: 4 },
    });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'InvalidBodyContent', fieldName: 'vcpus' });
    const stale = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { rev: 99 },
    });
    expect(stale.status).toBe(409);
    expect(await count()).toBe(n);
  });

  it('renames: 200, the new name and rev, one renamed event, a change notice; state untouched', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const before = (await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice })).json;
    const n = await count();
    w.bus.published.length = 0;
    const r = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: 'web-2', rev: before.rev },
    });
    expect(r.status, r.body).toBe(200);
    expect(r.json).toMatchObject({ name: 'web-2', rev: before.rev + 1, state: 'running' });
    expect(r.json.actions).toEqual(before.actions);
    expect(r.headers['etag']).toBe(`"${before.rev + 1}"`);
    const events = (await w.events()).slice(n);
    expect(events.map((e) => [e.stream, e.type, e.data])).toEqual([
      [vm.id, 'vm.renamed', { name: 'web-2' }],
    ]);
    expect(w.bus.published.map((p) => p.message)).toEqual([
      { type: 'changed', stream: vm.id, resourceType: 'virtualMachine' },
    ]);
    const read = await w.call('GET', `/v1/virtualmachines/${vm.id}`, { as: alice });
    expect(read.json.name).toBe('web-2');
    // The same name again is no change: 200, nothing written, even with the old (now stale) rev
    // absent; with the stale rev it is a conflict.
    const again = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: 'web-2' },
    });
    expect(again.status).toBe(200);
    expect(again.json.rev).toBe(before.rev + 1);
    const stale = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: 'web-3', rev: before.rev },
    });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe('Conflict');
    const staleHeader = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: 'web-3' },
      headers: { 'if-match': `"${before.rev}"` },
    });
    expect(staleHeader.status).toBe(409);
    expect(await count()).toBe(n + 1);
  });

  it('accepts a read-modify-write of the whole resource and a form', async () => {
    const vol = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 3 } })).json;
    const n = await count();
    const echoed = await w.call('PUT', `/v1/volumes/${vol.id}`, {
      as: alice,
      body: { ...vol, name: 'data-1' },
    });
    expect(echoed.status, echoed.body).toBe(200);
    expect(echoed.json).toMatchObject({ name: 'data-1', sizeGb: 3, rev: vol.rev + 1 });
    const viaForm = await w.call('POST', `/v1/volumes/${vol.id}?_method=PUT`, {
      as: alice,
      raw: `name=data-2&rev=${vol.rev + 1}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
    });
    expect(viaForm.status, viaForm.body).toBe(200);
    expect(viaForm.json.name).toBe('data-2');
    expect((await w.events()).slice(n).map((e) => e.type)).toEqual([
      'volume.renamed',
      'volume.renamed',
    ]);
  });

  it('refuses bad names, unknown and read-only fields by name, writing nothing', async () => {
    const vm = await vmOf(alice);
    const n = await count();
    for (const [body, code, fieldName] of [
      [{ name: 'web 2' }, 'InvalidCharacters', 'name'],
      [{ name: '' }, 'MinLengthExceeded', 'name'],
      [{ name: 'x'.repeat(64) }, 'MaxLengthExceeded', 'name'],
      [{ name: null }, 'MissingRequired', 'name'],
      [{ name: 'ok', bogus: 1 }, 'InvalidBodyContent', 'bogus'],
      [{ name: 'ok', memoryMb: 512 }, 'InvalidBodyContent', 'memoryMb'],
      [{ name: 'ok', state: 'stopped' }, 'InvalidBodyContent', 'state'],
      [{ name: 'ok', hostId: 'host-00000001' }, 'InvalidBodyContent', 'hostId'],
    ] as const) {
      const r = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, { as: alice, body });
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.json, JSON.stringify(body)).toMatchObject({ code, fieldName });
    }
    expect(await count()).toBe(n);
  });

  it('keeps account and host names unique; renames keys, hosts and snapshots', async () => {
    const n = await count();
    const taken = await w.call('PUT', `/v1/accounts/${alice.accountId}`, {
      body: { name: 'bob' },
    });
    expect(taken.status).toBe(422);
    expect(taken.json).toMatchObject({ code: 'NotUnique', fieldName: 'name' });
    expect(await count()).toBe(n);
    const renamed = await w.call('PUT', `/v1/accounts/${alice.accountId}`, {
      body: { name: 'alice smith' },
    });
    expect(renamed.status, renamed.body).toBe(200);
    expect(renamed.json.name).toBe('alice smith');
    // Users may not rename their account (accounts are managed by administrators).
    const own = await w.call('PUT', `/v1/accounts/${alice.accountId}`, {
      as: alice,
      body: { name: 'alice' },
    });
    expect(own.status).toBe(403);

    const h1 = (
      await w.call('POST', '/v1/hosts', { body: { name: 'c1', kind: 'storage', poolSizeGb: 9 } })
    ).json;
    await w.call('POST', '/v1/hosts', { body: { name: 'c2', kind: 'storage', poolSizeGb: 9 } });
    expect((await w.call('PUT', `/v1/hosts/${h1.id}`, { body: { name: 'c2' } })).json.code).toBe(
      'NotUnique',
    );
    const host = await w.call('PUT', `/v1/hosts/${h1.id}`, { body: { name: 'c3' } });
    expect(host.json).toMatchObject({ name: 'c3', state: 'registering' });

    const key = (await w.call('POST', '/v1/apikeys', { as: alice, body: { name: 'ci' } })).json;
    const keyRenamed = await w.call('PUT', `/v1/apikeys/${key.id}`, {
      as: alice,
      body: { name: 'ci runner' },
    });
    expect(keyRenamed.json).toMatchObject({ name: 'ci runner', publicValue: key.publicValue });
    expect(keyRenamed.json.secretValue).toBeUndefined();
    expect(
      (await w.call('PUT', `/v1/apikeys/${key.id}`, { as: bob, body: { name: 'x' } })).status,
    ).toBe(404);

    const vol = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 2 } })).json;
    await w.settleVolume(vol.id);
    const snap = (
      await w.call('POST', '/v1/snapshots', { as: alice, body: { volumeId: vol.id, name: 's' } })
    ).json;
    const snapRenamed = await w.call('PUT', `/v1/snapshots/${snap.id}`, {
      as: alice,
      body: { name: 'before-upgrade' },
    });
    expect(snapRenamed.json).toMatchObject({ name: 'before-upgrade', state: 'creating' });
  });

  it('refuses renaming what is removed or being deleted, but answers the same name', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    await w.call('DELETE', `/v1/virtualmachines/${vm.id}`, { as: alice });
    const key = (await w.call('POST', '/v1/apikeys', { as: alice, body: { name: 'k' } })).json;
    await w.call('DELETE', `/v1/apikeys/${key.id}`, { as: alice });
    const n = await count();
    const deleting = await w.call('PUT', `/v1/virtualmachines/${vm.id}`, {
      as: alice,
      body: { name: 'late' },
    });
    expect(deleting.status).toBe(422);
    expect(deleting.json.code).toBe('InvalidState');
    const revoked = await w.call('PUT', `/v1/apikeys/${key.id}`, {
      as: alice,
      body: { name: 'late' },
    });
    expect(revoked.json.code).toBe('InvalidState');
    const same = await w.call('PUT', `/v1/apikeys/${key.id}`, { as: alice, body: { name: 'k' } });
    expect(same.status).toBe(200);
    expect(await count()).toBe(n);
  });
});

describe('account deletion', () => {
  it('is for administrators, only for accounts without live resources; revokes the keys', async () => {
    const vol = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 1 } })).json;
    const n = await count();
    expect((await w.call('DELETE', `/v1/accounts/${alice.accountId}`, { as: alice })).status).toBe(
      403,
    );
    const busy = await w.call('DELETE', `/v1/accounts/${alice.accountId}`);
    expect(busy.status).toBe(422);
    expect(busy.json.code).toBe('InvalidState');
    expect(busy.json.message).toContain(vol.id);
    expect(await count()).toBe(n);

    // Once its volume is gone, the account can go.
    await w.call('DELETE', `/v1/volumes/${vol.id}`, { as: alice });
    expect((await w.call('DELETE', `/v1/accounts/${alice.accountId}`)).status).toBe(422);
    await w.append(vol.id, { type: 'volume.removed', data: {} });
    const extraKey = (await w.call('POST', '/v1/apikeys', { as: alice, body: {} })).json;
    const before = await count();
    const r = await w.call('DELETE', `/v1/accounts/${alice.accountId}`);
    expect(r.status, r.body).toBe(200);
    expect(r.json).toMatchObject({ state: 'removed', desired: 'deleted' });
    expect(r.json.removed).not.toBeNull();
    const written = (await w.events()).slice(before);
    expect(written.map((e) => e.type).sort()).toEqual([
      'account.removed',
      'apikey.revoked',
      'apikey.revoked',
    ]);
    expect(new Set(written.map((e) => e.stream))).toContain(extraKey.id);
    expect((await w.call('GET', '/v1', { as: alice })).status).toBe(401);
    // Idempotent, and the name is free again.
    const after = await count();
    expect((await w.call('DELETE', `/v1/accounts/${alice.accountId}`)).status).toBe(200);
    expect(await count()).toBe(after);
    expect((await w.call('POST', '/v1/accounts', { body: { name: 'alice' } })).status).toBe(201);
    const rename = await w.call('PUT', `/v1/accounts/${alice.accountId}`, {
      body: { name: 'gone' },
    });
    expect(rename.json.code).toBe('InvalidState');
    // Bob is untouched.
    expect((await w.call('GET', '/v1', { as: bob })).status).toBe(200);
  });

  it('never deletes the last admin account', async () => {
    const n = await count();
    const r = await w.call('DELETE', `/v1/accounts/${w.admin.accountId}`);
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'InvalidState' });
    expect(r.json.message).toContain('last admin');
    expect(await count()).toBe(n);
    expect((await w.call('GET', '/v1')).status).toBe(200);
  });
});

describe('delete', () => {
  it('deletes a VM asynchronously and is idempotent', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const r = await w.call('DELETE', `/v1/virtualmachines/${vm.id}`, { as: alice });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ state: 'deleting', desired: 'deleted', actions: {} });
    const n = await count();
    const again = await w.call('DELETE', `/v1/virtualmachines/${vm.id}`, { as: alice });
    expect(again.status).toBe(202);
    expect(again.json.state).toBe('deleting');
    const viaOverride = await w.call('POST', `/v1/virtualmachines/${vm.id}?_method=DELETE`, {
      as: alice,
      headers: { origin: BASE },
    });
    expect(viaOverride.status).toBe(202);
    expect(await count()).toBe(n);
  });

  it('refuses deleting a root or attached volume as InvalidState (422)', async () => {
    const vm = await vmOf(alice);
    await w.settleVm(vm.id, 'running');
    const n = await count();
    const r = await w.call('DELETE', `/v1/volumes/${vm.rootVolumeId}`, { as: alice });
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('InvalidState');
    const withBody = await w.call('DELETE', `/v1/volumes/${vm.rootVolumeId}`, {
      as: alice,
      body: { force: true },
    });
    expect(withBody.json.code).toBe('InvalidBodyContent');
    expect(await count()).toBe(n);
  });

  it('refuses deleting a snapshot a live volume was cloned from, naming the volume', async () => {
    const vol = (await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 2 } })).json;
    await w.settleVolume(vol.id);
    const snap = (
      await w.call('POST', '/v1/snapshots', { as: alice, body: { volumeId: vol.id, name: 's' } })
    ).json;
    await w.settleSnapshot(snap.id);
    const revBefore = (await w.call('GET', `/v1/snapshots/${snap.id}`, { as: alice })).json.rev;
    const clone = await w.call('POST', '/v1/volumes', {
      as: alice,
      body: { name: 'clone', sourceSnapshotId: snap.id },
    });
    expect(clone.status, clone.body).toBe(202);
    expect(clone.json).toMatchObject({ sizeGb: 2, sourceSnapshotId: snap.id });
    expect(clone.json.links.sourceSnapshot).toBe(`${BASE}/v1/snapshots/${snap.id}`);
    // The clone is recorded on the snapshot's stream too: a delete decided before it conflicts.
    const stale = await w.call('DELETE', `/v1/snapshots/${snap.id}`, {
      as: alice,
      body: { rev: revBefore },
    });
    expect(stale.status, stale.body).toBe(409);
    const r = await w.call('DELETE', `/v1/snapshots/${snap.id}`, { as: alice });
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('InvalidState');
    expect(r.json.message).toContain(clone.json.id);
    const clones = await w.call('GET', `/v1/snapshots/${snap.id}/volumes`, { as: alice });
    expect(clones.json.data.map((v: { id: string }) => v.id)).toEqual([clone.json.id]);
  });

  it('revokes an api key: it stops authenticating', async () => {
    const key = (await w.call('POST', '/v1/apikeys', { as: alice, body: { name: 'temp' } })).json;
    const creds = {
      accountId: alice.accountId,
      accessKey: key.publicValue,
      secretKey: key.secretValue,
    };
    expect((await w.call('GET', '/v1', { as: creds })).status).toBe(200);
    const r = await w.call('DELETE', `/v1/apikeys/${key.id}`, { as: alice });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ state: 'removed' });
    expect((await w.call('GET', '/v1', { as: creds })).status).toBe(401);
    expect((await w.call('DELETE', `/v1/apikeys/${key.id}`, { as: alice })).status).toBe(200);
  });
});
