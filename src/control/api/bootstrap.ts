/**
 * Seeding: the admin account and its api key pair, created when absent. `cloudbed serve` and the
 * simulator call it once before the API takes requests; it is idempotent (a second call finds the
 * account and the key and changes nothing), so a restart is a normal start. It also writes the
 * access key lookup stream of any key that lacks one (keys created before lookups existed), since
 * authentication finds keys only through it.
 */
import { assert } from '../../lib/assert.ts';
import { ConcurrencyError, type EventStore } from '../../ports/event-store.ts';
import type { Random, Runtime } from '../../ports/runtime.ts';
import {
  decideCreateAccount,
  decideCreateApiKey,
  hashSecret,
  type DecideContext,
  type Decision,
} from '../../model/decide.ts';
import { newEvent } from '../../model/events.ts';
import {
  accessKeyStreamId,
  type AccountRow,
  type ApiKeyRow,
  type SecretKdf,
} from '../../model/resources.ts';
import { constantTimeEqual, newAccessKey, newSalt, newSecretKey } from './auth.ts';

/** Options of {@link bootstrapAdmin}. */
export interface BootstrapOptions {
  readonly store: EventStore;
  readonly runtime: Runtime;
  /** The admin's access key; default: the existing key, or a new random one. No `:`, 1..128 chars. */
  readonly accessKey?: string;
  /** The admin's secret key; default: a new random one (only when a key is created). */
  readonly secretKey?: string;
  /** Name of the admin account when it is created; default `admin`. */
  readonly accountName?: string;
  /** Where a new key's access key, secret and salt are drawn from; default `runtime.random`. */
  readonly secrets?: Random;
  /**
   * The slow hash for `secretKey` when a person chose it (PERSON_SECRET_KDF); default none, for
   * secrets drawn at random (and the simulator's fixed ones).
   */
  readonly secretKdf?: SecretKdf;
}

/** The admin credentials. */
export interface AdminCredentials {
  readonly accountId: string;
  readonly accessKey: string;
  /** The secret, or null when an existing key was found and no secret was given (it is stored hashed). */
  readonly secretKey: string | null;
  /** True when this call created the account or the key. */
  readonly created: boolean;
}

/** The configured credentials contradict the store (a configuration error, not a bug). */
export class BootstrapError extends Error {
  override name = 'BootstrapError';
}

async function commit(store: EventStore, decision: Decision): Promise<string> {
  if (!decision.ok)
    throw new BootstrapError(
      `bootstrap refused: ${decision.error.code}: ${decision.error.message}`,
    );
  await store.append({ appends: decision.appends });
  return decision.id;
}

/**
 * Writes the lookup stream of every key in `keys` that has none. An access key claimed already (for
 * this key, or for another key with the same access key) is left alone.
 */
async function ensureAccessKeyLookups(
  store: EventStore,
  keys: readonly ApiKeyRow[],
  ctx: DecideContext,
): Promise<void> {
  for (const key of [...keys].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const stream = accessKeyStreamId(key.publicValue);
    if ((await store.get(stream)) !== null) continue;
    try {
      await store.append({
        appends: [
          {
            stream,
            expectedVersion: 0,
            events: [
              newEvent(
                'accesskey.claimed',
                { keyId: key.id },
                { atMs: ctx.nowMs, actor: 'bootstrap' },
              ),
            ],
          },
        ],
      });
    } catch (error) {
      // Another instance claimed it in between: the lookup exists, which is all that matters.
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }
}

/**
 * Ensures an admin account with a key pair exists and returns its credentials. Throws a
 * {@link BootstrapError} when the given access key exists with another secret or belongs to another
 * account (a configuration error that must not be papered over).
 */
export async function bootstrapAdmin(options: BootstrapOptions): Promise<AdminCredentials> {
  const { store, runtime } = options;
  if (options.accessKey !== undefined)
    assert(
      options.accessKey.length > 0 &&
        options.accessKey.length <= 128 &&
        !options.accessKey.includes(':'),
      'the admin access key must be 1..128 characters without ":"',
    );
  if (options.secretKey !== undefined)
    assert(options.secretKey.length > 0, 'the admin secret key must not be empty');
  const ctx: DecideContext = {
    nowMs: runtime.clock.nowMs(),
    ids: runtime.ids,
    actor: 'bootstrap',
    correlationId: runtime.ids.next('req'),
  };
  let created = false;

  const accounts = (await store.list({ type: 'account' })).map(
    (p) => p.data as unknown as AccountRow,
  );
  const admin = accounts.find((a) => a.kind === 'admin' && a.removed === null);
  let accountId: string;
  if (admin === undefined) {
    accountId = await commit(
      store,
      decideCreateAccount({ name: options.accountName ?? 'admin', kind: 'admin' }, accounts, ctx),
    );
    created = true;
  } else {
    accountId = admin.id;
  }

  const keys = (await store.list({ type: 'apiKey' })).map((p) => p.data as unknown as ApiKeyRow);
  await ensureAccessKeyLookups(store, keys, ctx);
  const live = keys.filter((k) => k.removed === null);
  if (options.accessKey !== undefined) {
    const existing = live.find((k) => k.publicValue === options.accessKey);
    if (existing !== undefined) {
      if (existing.accountId !== accountId)
        throw new BootstrapError(`access key ${options.accessKey} belongs to another account`);
      if (
        options.secretKey !== undefined &&
        !constantTimeEqual(
          hashSecret(existing.salt, options.secretKey, existing.kdf),
          existing.secretHash,
        )
      )
        throw new BootstrapError(`access key ${options.accessKey} exists with another secret`);
      return {
        accountId,
        accessKey: existing.publicValue,
        secretKey: options.secretKey ?? null,
        created,
      };
    }
  } else if (options.secretKey === undefined) {
    const existing = live.find((k) => k.accountId === accountId);
    if (existing !== undefined)
      return { accountId, accessKey: existing.publicValue, secretKey: null, created };
  }

  const account = (await store.get(accountId))?.data as unknown as AccountRow;
  const secrets = options.secrets ?? runtime.random;
  const accessKey = options.accessKey ?? newAccessKey(secrets);
  const secretKey = options.secretKey ?? newSecretKey(secrets);
  await commit(
    store,
    decideCreateApiKey(
      {
        accountId,
        name: 'admin',
        publicValue: accessKey,
        secret: secretKey,
        salt: newSalt(secrets),
        ...(options.secretKey !== undefined && options.secretKdf !== undefined
          ? { kdf: options.secretKdf }
          : {}),
      },
      account,
      keys,
      ctx,
    ),
  );
  return { accountId, accessKey, secretKey, created: true };
}
