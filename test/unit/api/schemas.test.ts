// Goal: /v1/schemas publishes what generic GDAPI clients build themselves from — resource fields
// with all their constraints, methods and actions the caller may use, input types, collection
// filters and the lifecycle (states and transitions) of every resource type. Method: fetch the
// schemas as the admin and as a user and compare with the schema tables and the model.

import { describe, expect, it } from 'vitest';
import { describeLifecycle, statesOf } from '../../../src/model/lifecycle.ts';
import { allSchemas } from '../../../src/model/gdapi-schema.ts';
import { BASE, createWorld } from './harness.ts';

describe('/v1/schemas', () => {
  it('lists every schema with links, fields, methods, actions and filters', async () => {
    const w = await createWorld();
    const r = await w.call('GET', '/v1/schemas');
    expect(r.json).toMatchObject({ type: 'collection', resourceType: 'schema' });
    expect(r.json.data.map((s: { id: string }) => s.id)).toEqual(allSchemas().map((s) => s.id));
    const vm = r.json.data.find((s: { id: string }) => s.id === 'virtualMachine');
    expect(vm.links).toEqual({
      self: `${BASE}/v1/schemas/virtualMachine`,
      collection: `${BASE}/v1/virtualmachines`,
    });
    expect(vm.resourceFields.memoryMb).toEqual({
      type: 'int',
      required: false,
      create: true,
      update: false,
      nullable: false,
      default: 1024,
      min: 256,
      max: 16384,
    });
    expect(vm.resourceFields.name).toMatchObject({
      minLength: 1,
      maxLength: 63,
      validChars: 'a-zA-Z0-9_.-',
    });
    expect(vm.resourceFields.volumes.type).toBe('array[volumeSpec]');
    expect(vm.resourceMethods).toEqual(['GET', 'PUT', 'DELETE']);
    expect(vm.collectionMethods).toEqual(['GET', 'POST']);
    expect(vm.collectionFilters.name.modifiers).toEqual([
      'eq',
      'ne',
      'lt',
      'lte',
      'gt',
      'gte',
      'prefix',
      'like',
      'notlike',
      'null',
      'notnull',
    ]);
    const volume = (await w.call('GET', '/v1/schemas/volume')).json;
    expect(volume.resourceActions.attach).toEqual({ input: 'volumeAttachInput', output: 'volume' });
    const input = (await w.call('GET', '/v1/schemas/volumeattachinput')).json;
    expect(input.resourceFields.virtualMachineId).toMatchObject({
      type: 'reference[virtualMachine]',
      required: true,
    });
  });

  it('publishes each lifecycle with its states and transitions', async () => {
    const w = await createWorld();
    const vm = (await w.call('GET', '/v1/schemas/virtualMachine')).json;
    expect(vm.lifecycle.states).toEqual(statesOf('virtualMachine'));
    expect(vm.lifecycle.initial).toBe('creating');
    expect(vm.lifecycle.transitions).toEqual(describeLifecycle('virtualMachine').transitions);
    expect(vm.lifecycle.transitions).toContainEqual(
      expect.objectContaining({ from: 'running', action: 'stop', to: 'stopping' }),
    );
    const host = (await w.call('GET', '/v1/schemas/host')).json;
    expect(host.lifecycle.states).toContain('maintenance');
    const key = (await w.call('GET', '/v1/schemas/apiKey')).json;
    expect(key.lifecycle.states).toEqual(['active', 'removed']);
  });

  it('shows a user only what it may use', async () => {
    const w = await createWorld();
    const alice = await w.newUser('alice');
    const r = await w.call('GET', '/v1/schemas', { as: alice });
    const ids = r.json.data.map((s: { id: string }) => s.id);
    expect(ids).not.toContain('host');
    expect((await w.call('GET', '/v1/schemas/host', { as: alice })).status).toBe(404);
    const account = (await w.call('GET', '/v1/schemas/account', { as: alice })).json;
    expect(account.resourceMethods).toEqual(['GET']);
    expect(account.collectionMethods).toEqual(['GET']);
    const vm = (await w.call('GET', '/v1/schemas/virtualMachine', { as: alice })).json;
    expect(vm.collectionMethods).toEqual(['GET', 'POST']);
    expect(Object.keys(vm.resourceActions).sort()).toEqual(['restart', 'start', 'stop']);
    expect((await w.call('GET', '/v1/schemas/nothing')).status).toBe(404);
  });
});
