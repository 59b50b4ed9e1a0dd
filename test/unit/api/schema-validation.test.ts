// Goal: the pure GDAPI schema validation refuses every kind of bad body with the right code and
// field, applies defaults, and never throws. Method: examples per rule against validateCreate,
// validateUpdate and validateActionInput, plus checks of the published schema tables.
import { describe, expect, it } from 'vitest';
import {
  allSchemas,
  collectionFilters,
  fieldOf,
  resourceSchemas,
  schemaOf,
  typeOfId,
  validateActionInput,
  validateCreate,
  validateUpdate,
  VM_MEMORY_MB,
  VOLUME_SIZE_GB,
} from '../../../src/model/gdapi-schema.ts';
import { USER_EVENTS } from '../../../src/model/lifecycle.ts';
import { COLLECTION, ID_PREFIX } from '../../../src/model/resources.ts';

const vm = { name: 'web-1', imageId: 'img-00000001' };

function errorOf(result: ReturnType<typeof validateCreate>) {
  expect(result.ok).toBe(false);
  return result.ok ? null : result.error;
}

describe('validateCreate', () => {
  it('applies defaults and keeps given values', () => {
    const r = validateCreate('virtualMachine', vm);
    expect(r).toEqual({
      ok: true,
      value: { ...vm, vcpus: 1, memoryMb: 1024, rootDiskGb: 40, startOnCreate: true },
    });
  });

  it.each([
    [{ imageId: 'img-00000001' }, 'MissingRequired', 'name'],
    [{ ...vm, name: null }, 'MissingRequired', 'name'],
    [{ ...vm, name: 5 }, 'InvalidFormat', 'name'],
    [{ ...vm, name: '' }, 'MinLengthExceeded', 'name'],
    [{ ...vm, name: 'x'.repeat(64) }, 'MaxLengthExceeded', 'name'],
    [{ ...vm, name: 'web 1' }, 'InvalidCharacters', 'name'],
    [{ ...vm, name: 'wéb' }, 'InvalidCharacters', 'name'],
    [{ ...vm, vcpus: 0 }, 'MinLimitExceeded', 'vcpus'],
    [{ ...vm, vcpus: 9 }, 'MaxLimitExceeded', 'vcpus'],
    [{ ...vm, vcpus: 1.5 }, 'InvalidFormat', 'vcpus'],
    [{ ...vm, vcpus: '2' }, 'InvalidFormat', 'vcpus'],
    [{ ...vm, memoryMb: VM_MEMORY_MB.max + 1 }, 'MaxLimitExceeded', 'memoryMb'],
    [{ ...vm, memoryMb: 1e300 }, 'InvalidFormat', 'memoryMb'],
    [{ ...vm, imageId: 'vol-00000001' }, 'InvalidReference', 'imageId'],
    [{ ...vm, imageId: '../etc' }, 'InvalidReference', 'imageId'],
    [{ ...vm, imageId: 7 }, 'InvalidFormat', 'imageId'],
    [{ ...vm, startOnCreate: 'yes' }, 'InvalidFormat', 'startOnCreate'],
    [{ ...vm, volumes: {} }, 'InvalidFormat', 'volumes'],
    [{ ...vm, volumes: [{}] }, 'MissingRequired', 'volumes[0].sizeGb'],
    [
      { ...vm, volumes: [{ sizeGb: VOLUME_SIZE_GB.max + 1 }] },
      'MaxLimitExceeded',
      'volumes[0].sizeGb',
    ],
    [{ ...vm, volumes: [{ sizeGb: 1, color: 'red' }] }, 'InvalidBodyContent', 'volumes[0].color'],
    [
      { ...vm, volumes: Array.from({ length: 26 }, () => ({ sizeGb: 1 })) },
      'MaxLengthExceeded',
      'volumes',
    ],
    [{ ...vm, colour: 'red' }, 'InvalidBodyContent', 'colour'],
    [{ ...vm, id: 'vm-00000001' }, 'InvalidBodyContent', 'id'],
    [{ ...vm, hostId: 'host-00000001' }, 'InvalidBodyContent', 'hostId'],
    [{ ...vm, rev: 1 }, 'InvalidBodyContent', 'rev'],
    [{ ...vm, type: 'volume' }, 'InvalidBodyContent', 'type'],
  ])('refuses %j with %s on %s', (body, code, fieldName) => {
    const error = errorOf(validateCreate('virtualMachine', body));
    expect(error).toMatchObject({ status: 422, code, fieldName });
  });

  it('accepts a matching type member (some clients send it)', () => {
    expect(validateCreate('virtualMachine', { ...vm, type: 'virtualMachine' }).ok).toBe(true);
  });

  it('refuses members named like Object.prototype properties', () => {
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const body = JSON.parse(`{"name":"a","imageId":"img-00000001","${key}":{}}`) as unknown;
      expect(errorOf(validateCreate('virtualMachine', body))).toMatchObject({
        code: 'InvalidBodyContent',
        fieldName: key,
      });
    }
  });

  it('refuses bodies that are not objects', () => {
    for (const body of [null, [], 'x', 3, true]) {
      expect(errorOf(validateCreate('virtualMachine', body))).toMatchObject({
        code: 'InvalidBodyContent',
      });
    }
  });

  it('applies cross-field rules of hosts and volumes', () => {
    expect(
      errorOf(validateCreate('host', { name: 'h1', kind: 'compute', vcpus: 4 })),
    ).toMatchObject({
      code: 'MissingRequired',
      fieldName: 'memoryMb',
    });
    expect(
      errorOf(validateCreate('host', { name: 'h1', kind: 'storage', poolSizeGb: 10, vcpus: 2 })),
    ).toMatchObject({ code: 'InvalidBodyContent', fieldName: 'vcpus' });
    expect(errorOf(validateCreate('host', { name: 'h1', kind: 'gpu' }))).toMatchObject({
      code: 'InvalidOption',
      fieldName: 'kind',
    });
    expect(errorOf(validateCreate('volume', { name: 'v' }))).toMatchObject({
      code: 'MissingRequired',
      fieldName: 'sizeGb',
    });
    expect(validateCreate('volume', { sourceSnapshotId: 'snap-00000001' }).ok).toBe(true);
  });

  it('refuses types without a collection or unknown', () => {
    expect(validateCreate('volumeSpec', {}).ok).toBe(false);
    expect(validateCreate('nothing', {}).ok).toBe(false);
  });
});

describe('validateUpdate', () => {
  const current = {
    id: 'vm-00000001',
    type: 'virtualMachine',
    name: 'web-1',
    vcpus: 2,
    links: { self: 'x' },
  };

  it('accepts an echo of the current representation and an empty body', () => {
    // Updatable fields come back (the api drops those equal to the current value); the rest must
    // equal the current representation and are dropped here.
    expect(validateUpdate('virtualMachine', current, current)).toEqual({
      ok: true,
      value: { name: 'web-1' },
    });
    expect(validateUpdate('virtualMachine', {}, current)).toEqual({ ok: true, value: {} });
  });

  it('checks an updated name as on create, and refuses null', () => {
    expect(validateUpdate('virtualMachine', { name: 'web-2' }, current)).toEqual({
      ok: true,
      value: { name: 'web-2' },
    });
    for (const [name, code] of [
      ['', 'MinLengthExceeded'],
      ['x'.repeat(64), 'MaxLengthExceeded'],
      ['web 2', 'InvalidCharacters'],
      [null, 'MissingRequired'],
      [7, 'InvalidFormat'],
    ] as const)
      expect(validateUpdate('virtualMachine', { name }, current), String(name)).toMatchObject({
        ok: false,
        error: { code, fieldName: 'name' },
      });
    expect(validateUpdate('volume', { name: null }, { ...current, type: 'volume' })).toMatchObject({
      ok: false,
      error: { code: 'InvalidFormat', fieldName: 'name' },
    });
    // Account and key names allow spaces and `@`.
    expect(validateUpdate('account', { name: 'Ops team@x' }, {})).toMatchObject({ ok: true });
  });

  it('refuses changes of read-only or create-only fields, naming them', () => {
    expect(validateUpdate('virtualMachine', { vcpus: 3 }, current)).toMatchObject({
      ok: false,
      error: { code: 'InvalidBodyContent', fieldName: 'vcpus' },
    });
    expect(validateUpdate('virtualMachine', { id: 'vm-2' }, current)).toMatchObject({
      ok: false,
      error: { fieldName: 'id' },
    });
    expect(validateUpdate('virtualMachine', { bogus: 1 }, current)).toMatchObject({
      ok: false,
      error: { code: 'InvalidBodyContent', fieldName: 'bogus' },
    });
  });
});

describe('validateActionInput', () => {
  it('validates inputs and refuses input to actions without one', () => {
    expect(validateActionInput('volume', 'grow', { sizeGb: 20 })).toEqual({
      ok: true,
      value: { sizeGb: 20 },
    });
    expect(validateActionInput('volume', 'grow', {})).toMatchObject({
      ok: false,
      error: { code: 'MissingRequired', fieldName: 'sizeGb' },
    });
    expect(validateActionInput('volume', 'grow', { sizeGb: 0 })).toMatchObject({
      ok: false,
      error: { code: 'MinLimitExceeded' },
    });
    expect(
      validateActionInput('volume', 'attach', { virtualMachineId: 'vol-00000001' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'InvalidReference', fieldName: 'virtualMachineId' },
    });
    expect(validateActionInput('virtualMachine', 'start', undefined)).toEqual({
      ok: true,
      value: {},
    });
    expect(validateActionInput('virtualMachine', 'start', { force: true })).toMatchObject({
      ok: false,
      error: { code: 'InvalidBodyContent', fieldName: 'force' },
    });
    expect(validateActionInput('virtualMachine', 'fly', {})).toMatchObject({ ok: false });
  });
});

describe('schema tables', () => {
  it('agree with the model: collection names, id prefixes and every user action', () => {
    for (const schema of resourceSchemas()) {
      const type = schema.id as keyof typeof COLLECTION;
      expect(schema.collection).toBe(COLLECTION[type]);
      expect(schema.idPrefix).toBe(ID_PREFIX[type]);
      expect(typeOfId(`${ID_PREFIX[type]}-0000abcd`)).toBe(schema.id);
    }
    for (const [type, events] of Object.entries(USER_EVENTS)) {
      const actions = Object.keys(schemaOf(type)!.resourceActions);
      const userActions = Object.keys(events).filter((a) => a !== 'delete');
      expect(actions.sort()).toEqual(userActions.sort());
    }
  });

  it('name every action input and embedded type that exists', () => {
    const ids = new Set(allSchemas().map((s) => s.id));
    for (const schema of allSchemas()) {
      for (const action of Object.values(schema.resourceActions)) {
        if (action.input !== undefined) expect(ids.has(action.input)).toBe(true);
        if (action.output !== undefined) expect(ids.has(action.output)).toBe(true);
      }
    }
    expect(fieldOf('virtualMachine', 'constructor')).toBeUndefined();
  });

  it('make names, and only names, updatable, on every type that can be renamed', () => {
    const updatable = resourceSchemas().flatMap((schema) =>
      Object.entries(schema.resourceFields)
        .filter(([, f]) => f.update === true)
        .map(([name]) => `${schema.id}.${name}`),
    );
    expect(updatable.sort()).toEqual(
      ['account', 'apiKey', 'host', 'snapshot', 'virtualMachine', 'volume']
        .map((t) => `${t}.name`)
        .sort(),
    );
    for (const schema of resourceSchemas())
      if (schema.id !== 'image') expect(schema.resourceMethods, schema.id).toContain('PUT');
    expect(schemaOf('account')!.resourceMethods).toContain('DELETE');
  });

  it('publish filters with type-appropriate modifiers', () => {
    const filters = collectionFilters('virtualMachine');
    expect(filters['name']?.modifiers).toContain('like');
    expect(filters['vcpus']?.modifiers).not.toContain('prefix');
    expect(filters['volumes']).toBeUndefined();
    expect(collectionFilters('apiKey')['secretValue']).toBeUndefined();
  });
});
