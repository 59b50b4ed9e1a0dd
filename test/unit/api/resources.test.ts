// Goal: resources look the way GDAPI clients expect — version root, absolute links for every xxxId
// and reachable collection, state-dependent actions equal to the lifecycle's availableActions, rev,
// ISO dates, X-API-Schemas — and a create writes one atomic batch and then announces every stream.
// Method: drive createApi over the in-memory store; play the main loop's part by appending events.

import { beforeEach, describe, expect, it } from 'vitest';
import { availableActions } from '../../../src/model/lifecycle.ts';
import { CHANNELS } from '../../../src/ports/bus.ts';
import { BASE, createWorld, type World } from './harness.ts';

let w: World;
beforeEach(async () => {
  w = await createWorld();
});

async function createVm(body: Record<string, unknown> = {}) {
  const r = await w.call('POST', '/v1/virtualmachines', {
    body: { name: 'web-1', imageId: 'img-00000001', ...body },
  });
  expect(r.status).toBe(202);
  return r;
}

describe('version root', () => {
  it('links every collection the caller may see, absolutely', async () => {
    const r = await w.call('GET', '/v1');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ type: 'apiVersion', id: 'v1' });
    expect(r.json.links).toMatchObject({
      self: `${BASE}/v1`,
      schemas: `${BASE}/v1/schemas`,
      virtualmachines: `${BASE}/v1/virtualmachines`,
      hosts: `${BASE}/v1/hosts`,
    });
    const user = await w.newUser('alice');
    const asUser = await w.call('GET', '/v1/', { as: user });
    expect(asUser.json.links.hosts).toBeUndefined();
    expect(asUser.json.links.volumes).toBe(`${BASE}/v1/volumes`);
    const root = await w.call('GET', '/');
    expect(root.json.data[0].id).toBe('v1');
  });

  it('sets X-API-Schemas on every response, errors included', async () => {
    for (const [method, path] of [
      ['GET', '/v1'],
      ['GET', '/v1/nothing'],
      ['PATCH', '/v1/volumes'],
    ] as const) {
      const r = await w.call(method, path);
      expect(r.headers['x-api-schemas']).toBe(`${BASE}/v1/schemas`);
    }
    const unauth = await w.call('GET', '/v1', { as: null });
    expect(unauth.headers['x-api-schemas']).toBe(`${BASE}/v1/schemas`);
  });

  it('builds links from the URL the client used', async () => {
    const r = await w.call('GET', 'https://cloud.example.com/v1');
    expect(r.json.links.self).toBe('https://cloud.example.com/v1');
    expect(r.headers['x-api-schemas']).toBe('https://cloud.example.com/v1/schemas');
  });
});

describe('create', () => {
  it('answers 202 with Location and writes the VM and its volumes in one batch', async () => {
    const before = (await w.events()).length;
    const r = await createVm({
      volumes: [{ sizeGb: 10, name: 'data' }, { sizeGb: 20 }],
      memoryMb: 2048,
    });
    const vm = r.json;
    expect(r.headers['location']).toBe(`${BASE}/v1/virtualmachines/${vm.id}`);
    expect(vm).toMatchObject({
      type: 'virtualMachine',
      name: 'web-1',
      state: 'creating',
      transitioning: 'yes',
      memoryMb: 2048,
      vcpus: 1,
      rootDiskGb: 40,
      desired: 'running',
      rev: 1,
      accountId: w.admin.accountId,
      removed: null,
    });
    expect(vm.created).toBe(new Date(w.runtime.clock.nowMs()).toISOString());
    const events = (await w.events()).slice(before);
    expect(events.map((e) => e.type)).toEqual([
      'vm.created',
      'volume.created',
      'volume.created',
      'volume.created',
    ]);
    // One batch: consecutive positions, one correlation id, the caller as actor.
    expect(new Set(events.map((e) => e.meta.correlationId)).size).toBe(1);
    expect(events.every((e) => e.meta.actor === `api:${w.admin.accountId}`)).toBe(true);
    // A change notice per stream, after the commit.
    const notices = w.bus.published
      .filter((p) => p.channel === CHANNELS.changes)
      .map((p) => p.message);
    expect(notices).toEqual(
      events.map((e) => ({
        type: 'changed',
        stream: e.stream,
        resourceType: e.type.startsWith('vm.') ? 'virtualMachine' : 'volume',
      })),
    );
    const volumes = await w.call('GET', `/v1/virtualmachines/${vm.id}/volumes?sort=name`);
    expect(volumes.json.data.map((v: { name: string }) => v.name)).toEqual([
      'data',
      'web-1-root',
      'web-1-vol2',
    ]);
  });

  it('answers 201 for synchronous types and shows an api key secret only once', async () => {
    const account = await w.call('POST', '/v1/accounts', { body: { name: 'Acme Corp' } });
    expect(account.status).toBe(201);
    expect(account.json).toMatchObject({ kind: 'user', state: 'active' });
    const key = await w.call('POST', '/v1/apikeys', {
      body: { accountId: account.json.id, name: 'ci' },
    });
    expect(key.status).toBe(201);
    expect(key.json.secretValue).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(key.json.publicValue).toMatch(/^[A-Z0-9]{20}$/);
    const again = await w.call('GET', `/v1/apikeys/${key.json.id}`);
    expect(again.json.secretValue).toBeUndefined();
    expect(again.body).not.toContain(key.json.secretValue);
    expect(again.body).not.toContain('secretHash');
    expect(again.body).not.toContain('salt');
  });

  it('leaves a VM stopped when startOnCreate is false', async () => {
    const r = await createVm({ startOnCreate: false });
    expect(r.json.desired).toBe('stopped');
  });

  it('reports domain refusals as 422 and writes nothing', async () => {
    const before = (await w.events()).length;
    const r = await w.call('POST', '/v1/virtualmachines', {
      body: { name: 'win', imageId: 'img-00000005', rootDiskGb: 10 },
    });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({
      type: 'error',
      status: 422,
      code: 'MinLimitExceeded',
      fieldName: 'rootDiskGb',
    });
    const unknownImage = await w.call('POST', '/v1/virtualmachines', {
      body: { name: 'x', imageId: 'img-99999999' },
    });
    expect(unknownImage.json).toMatchObject({ code: 'InvalidReference', fieldName: 'imageId' });
    const tooMuch = await w.call('POST', '/v1/virtualmachines', {
      body: { name: 'x', imageId: 'img-00000001', volumes: [{ sizeGb: 1000 }, { sizeGb: 300 }] },
    });
    expect(tooMuch.json).toMatchObject({ code: 'MaxLimitExceeded', fieldName: 'volumes' });
    expect((await w.events()).length).toBe(before);
    expect(w.bus.published).toHaveLength(0);
  });

  it('refuses names that exist where names are unique', async () => {
    await w.call('POST', '/v1/accounts', { body: { name: 'dup' } });
    const r = await w.call('POST', '/v1/accounts', { body: { name: 'dup' } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'NotUnique', fieldName: 'name' });
  });
});

describe('read', () => {
  it('shows actions exactly as the lifecycle allows, as absolute action URLs', async () => {
    const vm = (await createVm()).json;
    const self = `${BASE}/v1/virtualmachines/${vm.id}`;
    for (const domain of ['running', 'shutoff'] as const) {
      await w.settleVm(vm.id, domain);
      const r = await w.call('GET', `/v1/virtualmachines/${vm.id}`);
      const expected = availableActions('virtualMachine', r.json.state);
      expect(Object.keys(r.json.actions).sort()).toEqual(expected);
      for (const action of expected)
        expect(r.json.actions[action]).toBe(`${self}?action=${action}`);
    }
  });

  it('links every xxxId that is set, and every reachable collection', async () => {
    const vm = (await createVm()).json;
    await w.settleVm(vm.id, 'running');
    const r = await w.call('GET', `/v1/virtualmachines/${vm.id}`);
    expect(r.headers['etag']).toBe(`"${r.json.rev}"`);
    expect(r.json.links).toEqual({
      self: `${BASE}/v1/virtualmachines/${vm.id}`,
      account: `${BASE}/v1/accounts/${w.admin.accountId}`,
      image: `${BASE}/v1/images/img-00000001`,
      host: `${BASE}/v1/hosts/${r.json.hostId}`,
      rootVolume: `${BASE}/v1/volumes/${r.json.rootVolumeId}`,
      volumes: `${BASE}/v1/virtualmachines/${vm.id}/volumes`,
    });
    const root = await w.call('GET', `/v1/volumes/${r.json.rootVolumeId}`);
    expect(root.json.links.virtualMachine).toBe(`${BASE}/v1/virtualmachines/${vm.id}`);
    expect(root.json.links.snapshots).toBe(`${BASE}/v1/volumes/${r.json.rootVolumeId}/snapshots`);
    expect(root.json.links.sourceSnapshot).toBeUndefined();
  });

  it('serves the image catalogue read-only', async () => {
    const list = await w.call('GET', '/v1/images');
    expect(list.json.data.map((i: { name: string }) => i.name)).toContain('Ubuntu 12.04');
    expect(list.json.createTypes).toEqual({});
    const one = await w.call('GET', '/v1/images/img-00000002');
    expect(one.json).toMatchObject({
      name: 'Fedora 16',
      os: 'linux',
      sizeGb: 3,
      created: '1970-01-01T00:00:00.000Z',
    });
    expect((await w.call('POST', '/v1/images', { body: { name: 'x' } })).status).toBe(405);
    expect((await w.call('DELETE', '/v1/images/img-00000002')).status).toBe(405);
  });

  it('answers 404 for unknown ids, paths and collections', async () => {
    for (const path of [
      '/v1/virtualmachines/vm-deadbeef',
      '/v1/virtualmachines/vol-deadbeef',
      '/v1/virtualmachines/%E0%A4%A',
      '/v1/nothing',
      '/v2',
      '/v1/virtualmachines/vm-deadbeef/volumes',
      '/v1/virtualmachines/a/b/c',
    ]) {
      const r = await w.call('GET', path);
      expect(r.status, path).toBe(404);
      expect(r.json).toMatchObject({ type: 'error', code: 'NotFound' });
    }
    const vm = (await createVm()).json;
    expect((await w.call('GET', `/v1/virtualmachines/${vm.id}/disks`)).status).toBe(404);
  });
});
