/** The GDAPI schemas of accounts and their api keys. */
import {
  COMMON_FIELDS,
  createOnly,
  DESIRED_PRESENCE,
  LABEL_CHARS,
  readOnly,
  resourceName,
  resourceType,
} from './fields.ts';
import type { TypeSchema } from './types.ts';

/** `account`: readable by everyone (their own), created and deleted by admins. */
export const accountSchema: TypeSchema = resourceType({
  id: 'account',
  collection: 'accounts',
  idPrefix: 'acct',
  resourceFields: {
    ...COMMON_FIELDS,
    name: resourceName(true, LABEL_CHARS, 128),
    kind: createOnly('enum', { options: ['admin', 'user'], default: 'user' }),
    desired: DESIRED_PRESENCE,
  },
  // DELETE (admin) removes an account that owns no live VM, volume or snapshot and is not the
  // last admin, revoking its keys in the same write; the row stays as a tombstone.
  collectionLinks: {
    apikeys: { type: 'apiKey', field: 'accountId' },
    virtualmachines: { type: 'virtualMachine', field: 'accountId' },
    volumes: { type: 'volume', field: 'accountId' },
    snapshots: { type: 'snapshot', field: 'accountId' },
  },
  createAudience: 'admin',
});

/** `apiKey`: an access key and its secret, shown once. */
export const apiKeySchema: TypeSchema = resourceType({
  id: 'apiKey',
  collection: 'apikeys',
  idPrefix: 'key',
  resourceFields: {
    ...COMMON_FIELDS,
    accountId: createOnly('reference[account]', {
      nullable: true,
      description: 'The owning account; only an admin may name another account than its own.',
    }),
    name: resourceName(false, LABEL_CHARS, 128),
    publicValue: readOnly('string', { description: 'The access key.' }),
    secretValue: readOnly('password', {
      nullable: true,
      createResponseOnly: true,
      description: 'The secret key: shown once, in the create response; stored only hashed.',
    }),
    desired: DESIRED_PRESENCE,
  },
});
