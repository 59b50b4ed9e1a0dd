/**
 * How the streams of accounts, api keys and access key lookups fold into their rows. None has a
 * lifecycle machine: a row is `active` until removed, and then stays as a tombstone.
 */
import { assert } from '../../lib/assert.ts';
import { dataOf } from '../events.ts';
import type { AccessKeyRow, AccountRow, ApiKeyRow } from '../resources.ts';
import type { StoredEvent } from '../stream.ts';
import { activeRow, renamed, tombstone, type ResourceFold } from './kit.ts';

/** The fold of `account` streams. */
export const accountFold: ResourceFold<AccountRow, never, 'account.created'> = {
  creation: 'account.created',
  // An account belongs to itself, so an account's own queries include it.
  create: (x, event) => ({
    ...activeRow(event, 'account', event.stream, x.name),
    kind: x.kind,
    observed: null,
  }),
  noun: 'an account',
  reducers: { 'account.renamed': renamed, 'account.removed': tombstone },
};

/** The fold of `apiKey` streams. */
export const apiKeyFold: ResourceFold<ApiKeyRow, never, 'apikey.created'> = {
  creation: 'apikey.created',
  create: ({ accountId, name, publicValue, secretHash, salt, kdf }, event) => ({
    ...activeRow(event, 'apiKey', accountId, name),
    publicValue,
    secretHash,
    salt,
    kdf: kdf ?? null,
    observed: null,
  }),
  noun: 'an api key',
  reducers: { 'apikey.revoked': tombstone, 'apikey.renamed': renamed },
};

/** Folds an access key lookup stream: its one `accesskey.claimed` event, never anything after. */
export function foldAccessKey(row: AccessKeyRow | null, event: StoredEvent): AccessKeyRow {
  assert(
    event.type === 'accesskey.claimed' && row === null,
    `projector: unexpected ${event.type} on access key lookup ${event.stream}`,
  );
  return {
    ...activeRow(event, 'accessKey', null, event.stream),
    keyId: dataOf(event, 'accesskey.claimed').keyId,
    observed: null,
  };
}
