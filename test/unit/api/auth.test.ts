// Goal: HTTP Basic authentication with api key pairs — 401 (with WWW-Authenticate) for missing,
// malformed, unknown or wrong credentials and for revoked keys; keys found through their access key
// lookup stream, never by listing every key; secrets stored only hashed and compared in constant
// time; the admin seeding is idempotent, writes missing lookups and refuses contradictory
// configuration. Method: createApi over the in-memory store (wrapped to count listings); direct
// checks of the helpers.

import { describe, expect, it } from 'vitest';
import { bootstrapAdmin, BootstrapError } from '../../../src/control/api/index.ts';
import {
  constantTimeEqual,
  parseBasicAuth,
  VerifiedSecrets,
} from '../../../src/control/api/auth.ts';
import { createApi } from '../../../src/control/api/index.ts';
import { scryptHex } from '../../../src/lib/hash.ts';
import { createMemoryEventStore } from '../../../src/adapters/memory-event-store.ts';
import { projector } from '../../../src/model/projector.ts';
import { newEvent } from '../../../src/model/events.ts';
import { hashSecret } from '../../../src/model/decide.ts';
import {
  accessKeyStreamId,
  PERSON_SECRET_KDF,
  type ApiKeyRow,
} from '../../../src/model/resources.ts';
import type { EventStore, ProjectionQuery } from '../../../src/ports/event-store.ts';
import { basic, createFakeBus, createTestRuntime, createWorld } from './harness.ts';

describe('authentication', () => {
  it('401 Unauthorized with a Basic challenge for every kind of bad credential', async () => {
    const w = await createWorld();
    const cases: (string | undefined)[] = [
      undefined,
      '',
      'Bearer abc',
      'Basic',
      'Basic !!!notbase64',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from(':secret').toString('base64')}`,
      basic(w.admin.accessKey, `${w.admin.secretKey}x`),
      basic(w.admin.accessKey, w.admin.secretKey.slice(0, -1)),
      basic(w.admin.accessKey.toLowerCase(), w.admin.secretKey),
      basic('UNKNOWNKEY', w.admin.secretKey),
      `Basic ${Buffer.from([0xff, 0x3a, 0x41]).toString('base64')}`,
    ];
    for (const authorization of cases) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      for (const [method, path] of [
        ['GET', '/v1'],
        ['GET', '/v1/schemas'],
        ['POST', '/v1/volumes'],
        ['GET', '/v1/nothing'],
      ] as const) {
        const r = await w.call(method, path, { as: null, headers, body: { sizeGb: 1 } });
        expect(r.status, `${authorization} ${method} ${path}`).toBe(401);
        expect(r.json).toMatchObject({ type: 'error', status: 401, code: 'Unauthorized' });
        expect(r.headers['www-authenticate']).toMatch(/^Basic realm="cloudbed"/);
      }
    }
    expect(
      (await w.events()).filter(
        (e) =>
          !e.type.startsWith('account') &&
          !e.type.startsWith('apikey') &&
          !e.type.startsWith('accesskey'),
      ),
    ).toHaveLength(0);
  });

  it('accepts the scheme name in any case', async () => {
    const w = await createWorld();
    const header = `basic ${Buffer.from(`${w.admin.accessKey}:${w.admin.secretKey}`).toString('base64')}`;
    expect(
      (await w.call('GET', '/v1', { as: null, headers: { authorization: header } })).status,
    ).toBe(200);
  });

  it('stores secrets only hashed and salted', async () => {
    const w = await createWorld();
    const key = (await w.call('POST', '/v1/apikeys', { body: { name: 'k' } })).json;
    const events = JSON.stringify(await w.events());
    expect(events).not.toContain(key.secretValue);
    expect(events).not.toContain(w.admin.secretKey);
    const row = (await w.store.get(key.id))!.data as { secretHash: string; salt: string };
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row.salt).toMatch(/^[0-9a-f]{32}$/);
  });

  it('parses Basic credentials and compares in constant time', () => {
    expect(parseBasicAuth(`Basic ${Buffer.from('AK:se:cret').toString('base64')}`)).toEqual({
      access: 'AK',
      secret: 'se:cret',
    });
    expect(parseBasicAuth(undefined)).toBeNull();
    expect(parseBasicAuth(`Basic ${'A'.repeat(2000)}`)).toBeNull();
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
  });
});

describe('key lookup', () => {
  it('finds the key by its access key without listing keys', async () => {
    const listed: ProjectionQuery[] = [];
    const inner = createMemoryEventStore({ projector });
    const store: EventStore = {
      ...inner,
      list: (query) => {
        listed.push(query);
        return inner.list(query);
      },
    };
    const w = await createWorld({ store });
    const alice = await w.newUser('alice');
    const lookup = await w.store.get(accessKeyStreamId(alice.accessKey));
    expect(lookup).toMatchObject({ type: 'accessKey', accountId: null });
    expect((lookup!.data as { keyId: string }).keyId).toMatch(/^key-/);
    listed.length = 0;
    expect((await w.call('GET', '/v1/images', { as: alice })).status).toBe(200);
    expect((await w.call('GET', '/v1', { as: { ...alice, accessKey: 'NOSUCHKEY' } })).status).toBe(
      401,
    );
    expect(listed).toEqual([]);
  });

  it('needs the lookup: a key without one works once bootstrap has written it', async () => {
    const w = await createWorld();
    // A key as written before lookups existed: its created event only.
    const salt = '0123456789abcdef0123456789abcdef';
    await w.append('key-0ld0ld00', {
      type: 'apikey.created',
      data: {
        accountId: w.admin.accountId,
        name: 'old',
        publicValue: 'OLDKEY',
        secretHash: hashSecret(salt, 'old-secret'),
        salt,
      },
    });
    const old = { accountId: w.admin.accountId, accessKey: 'OLDKEY', secretKey: 'old-secret' };
    expect((await w.call('GET', '/v1', { as: old })).status).toBe(401);
    await bootstrapAdmin({ store: w.store, runtime: w.runtime });
    expect((await w.call('GET', '/v1', { as: old })).status).toBe(200);
    const n = (await w.events()).length;
    await bootstrapAdmin({ store: w.store, runtime: w.runtime });
    expect((await w.events()).length).toBe(n);
  });

  it('makes two keys with one access key conflict in the store', async () => {
    const w = await createWorld();
    const claim = (keyId: string) =>
      w.store.append({
        appends: [
          {
            stream: accessKeyStreamId('SAMEKEY'),
            expectedVersion: 0,
            events: [newEvent('accesskey.claimed', { keyId }, { atMs: 1 })],
          },
        ],
      });
    await claim('key-00000001');
    await expect(claim('key-00000002')).rejects.toThrow(/expected version 0/);
  });
});

describe('bootstrapAdmin', () => {
  it('creates the admin once, then finds it; given keys are used and checked', async () => {
    const runtime = createTestRuntime(5);
    const store = createMemoryEventStore({ projector });
    const first = await bootstrapAdmin({
      store,
      runtime,
      accessKey: 'ADMINKEY',
      secretKey: 's3cret',
    });
    expect(first).toMatchObject({ accessKey: 'ADMINKEY', secretKey: 's3cret', created: true });
    const n = (await store.readAll(0, 1000)).length;
    // The account, the key and the key's access key lookup.
    expect(n).toBe(3);
    const again = await bootstrapAdmin({
      store,
      runtime,
      accessKey: 'ADMINKEY',
      secretKey: 's3cret',
    });
    expect(again).toEqual({ ...first, created: false });
    const found = await bootstrapAdmin({ store, runtime });
    expect(found).toMatchObject({
      accountId: first.accountId,
      accessKey: 'ADMINKEY',
      secretKey: null,
      created: false,
    });
    expect((await store.readAll(0, 1000)).length).toBe(n);
    await expect(
      bootstrapAdmin({ store, runtime, accessKey: 'ADMINKEY', secretKey: 'other' }),
    ).rejects.toThrow(BootstrapError);
    const second = await bootstrapAdmin({ store, runtime, accessKey: 'SECONDKEY' });
    expect(second.created).toBe(true);
    expect(second.secretKey).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(second.accountId).toBe(first.accountId);
  });
});

describe('secrets a person chose', () => {
  it('are stored with scrypt and its parameters, and verify under the cost they were stored with', async () => {
    const runtime = createTestRuntime(6);
    const store = createMemoryEventStore({ projector });
    // A low cost keeps the test fast; the parameters travel with the hash.
    const kdf = { name: 'scrypt', n: 2 ** 10, r: 8, p: 1 } as const;
    const admin = await bootstrapAdmin({
      store,
      runtime,
      accessKey: 'PERSONKEY',
      secretKey: 'correct horse',
      secretKdf: kdf,
    });
    const key = (await store.list({ type: 'apiKey' }))[0]!.data as unknown as ApiKeyRow;
    expect(key.kdf).toEqual(kdf);
    expect(key.secretHash).toBe(scryptHex('correct horse', key.salt, kdf));
    expect(key.secretHash).not.toBe(hashSecret(key.salt, 'correct horse'));
    expect(PERSON_SECRET_KDF.n).toBeGreaterThanOrEqual(2 ** 15);

    const api = createApi({ runtime, store, bus: createFakeBus() });
    const get = async (secret: string) =>
      (
        await api.handle({
          method: 'GET',
          url: 'http://api.test/v1',
          headers: { authorization: basic(admin.accessKey, secret), accept: 'application/json' },
          body: '',
        })
      ).status;
    expect(await get('correct horse')).toBe(200);
    // Remembered once verified, and only that secret: others still fail, the right one still works.
    expect(await get('correct horsf')).toBe(401);
    expect(await get('')).toBe(401);
    expect(await get('correct horse')).toBe(200);
    // Bootstrap checks a configured secret against the slow hash too.
    await expect(
      bootstrapAdmin({
        store,
        runtime,
        accessKey: 'PERSONKEY',
        secretKey: 'wrong',
        secretKdf: kdf,
      }),
    ).rejects.toThrow(BootstrapError);
    expect(
      (await bootstrapAdmin({ store, runtime, accessKey: 'PERSONKEY', secretKey: 'correct horse' }))
        .created,
    ).toBe(false);
  });

  it('remembers a verified secret by key and stored hash only', () => {
    const verified = new VerifiedSecrets(2);
    const key = (id: string, secretHash = 'h') =>
      ({ id, salt: 's', secretHash, kdf: PERSON_SECRET_KDF }) as unknown as ApiKeyRow;
    verified.remember(key('key-1'), 'a');
    expect(verified.has(key('key-1'), 'a')).toBe(true);
    expect(verified.has(key('key-1'), 'b')).toBe(false);
    expect(verified.has(key('key-2'), 'a')).toBe(false);
    expect(verified.has(key('key-1', 'other'), 'a')).toBe(false);
    verified.remember(key('key-2'), 'a');
    verified.remember(key('key-3'), 'a');
    expect(verified.has(key('key-1'), 'a')).toBe(false);
    expect(verified.has(key('key-3'), 'a')).toBe(true);
  });
});
