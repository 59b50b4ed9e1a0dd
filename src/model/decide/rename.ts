/**
 * Renames (PUT with a new `name`), the one update every resource type shares: the name follows
 * the type's create rules (its schema) and, where create requires it, stays unique.
 */
import { assert } from '../../lib/assert.ts';
import type { EventType } from '../events.ts';
import { validateField } from '../gdapi-schema.ts';
import { isRemoved } from '../resources.ts';
import type {
  AccountRow,
  ApiKeyRow,
  HostRow,
  SnapshotRow,
  VmRow,
  VolumeRow,
} from '../resources.ts';
import { appendTo, fail, ok } from './kit.ts';
import type { DecideContext, DecideErrorCode, Decision } from './kit.ts';

/** Rows that can be renamed. */
export type RenamableRow = VmRow | VolumeRow | SnapshotRow | HostRow | AccountRow | ApiKeyRow;

const RENAMED = {
  virtualMachine: 'vm.renamed',
  volume: 'volume.renamed',
  snapshot: 'snapshot.renamed',
  host: 'host.renamed',
  account: 'account.renamed',
  apiKey: 'apikey.renamed',
} as const satisfies Record<RenamableRow['type'], EventType>;

/** Types whose names are unique among their live resources, as on create. */
const UNIQUE_NAMES: ReadonlySet<string> = new Set<RenamableRow['type']>(['account', 'host']);

/** Codes a field check may give that a decision passes on unchanged. */
const FIELD_CODES: ReadonlySet<string> = new Set<DecideErrorCode>([
  'MissingRequired',
  'InvalidFormat',
  'MinLengthExceeded',
  'MaxLengthExceeded',
  'InvalidCharacters',
]);

/**
 * PUT /v1/<collection>/{id} with a new `name`. The same name is a no-op (ok with no appends: the
 * api answers 200 and writes nothing). Otherwise the name follows the create rules of the type's
 * schema (length, characters), is unique among live rows where create requires it (accounts,
 * hosts: pass every row of the type as `existing`), and the resource must not be removed or being
 * deleted. Moves no lifecycle state.
 */
export function decideRename(
  row: RenamableRow,
  name: string,
  ctx: DecideContext,
  existing?: readonly RenamableRow[],
): Decision {
  if (name === row.name) return ok(row.id, []);
  const invalid = validateField(row.type, 'name', name);
  if (invalid !== null)
    return fail(
      FIELD_CODES.has(invalid.code) ? (invalid.code as DecideErrorCode) : 'InvalidFormat',
      invalid.message,
      'name',
    );
  if (isRemoved(row)) return fail('InvalidState', `${row.type} ${row.id} is removed`);
  if (row.desired === 'deleted')
    return fail('InvalidState', `${row.type} ${row.id} is being deleted`);
  if (UNIQUE_NAMES.has(row.type)) {
    assert(existing !== undefined, `decideRename of a ${row.type} needs the existing rows`);
    if (
      existing.some(
        (o) => o.type === row.type && o.id !== row.id && !isRemoved(o) && o.name === name,
      )
    )
      return fail('NotUnique', `a ${row.type} named ${name} exists`, 'name');
  }
  return ok(row.id, [appendTo(row, RENAMED[row.type], { name }, ctx)]);
}
