/**
 * The projector: folds each stored event into its stream's projection row. Pure and deterministic
 * (the port's `Projector`), so projections can be rebuilt from the log at any time and the in-memory
 * and SQL stores agree row for row.
 *
 * Each resource type folds by its own table of reducers, one per event type (src/model/fold/*):
 * the reducer updates the row's fields, then the type feeds the matching event to its lifecycle
 * machine to get the new `state` and "settles" on what the current observation implies (see
 * fold/reconciled.ts for why settling matters and how attempts and failure reasons carry over).
 * Removed resources stay as tombstones (state `removed`, `removed` set).
 */
import { assert, assertNever, AssertionError } from '../lib/assert.ts';
import { upcast, type UpcastRegistry } from './events.ts';
import { accountFold, apiKeyFold, foldAccessKey } from './fold/account.ts';
import { hostFold } from './fold/host.ts';
import { foldWith, type ResourceFold } from './fold/kit.ts';
import { snapshotFold } from './fold/snapshot.ts';
import { foldUsage } from './fold/usage.ts';
import { vmFold } from './fold/vm.ts';
import { volumeFold } from './fold/volume.ts';
import type { Row, RowOf, StreamResourceType } from './resources.ts';
import type { JsonObject, Projector, StoredEvent } from './stream.ts';

export { volumeObservedReady } from './fold/volume.ts';

/** The type of row a stream's first event creates, by the event type's prefix. */
const TYPE_OF_PREFIX = new Map<string, StreamResourceType>([
  ['vm', 'virtualMachine'],
  ['volume', 'volume'],
  ['snapshot', 'snapshot'],
  ['host', 'host'],
  ['account', 'account'],
  ['apikey', 'apiKey'],
  ['usage', 'usage'],
  ['accesskey', 'accessKey'],
]);

function typeOfEvent(type: string): StreamResourceType {
  const rowType = TYPE_OF_PREFIX.get(type.slice(0, type.indexOf('.')));
  if (rowType === undefined) throw new AssertionError(`projector: unknown event prefix in ${type}`);
  return rowType;
}

/** A type's fold of one event into its row; `row` is null only for the stream's first event. */
type FoldOf<T extends StreamResourceType> = (row: RowOf<T> | null, event: StoredEvent) => RowOf<T>;

function byTable<T extends StreamResourceType, E>(fold: ResourceFold<RowOf<T>, E>): FoldOf<T> {
  return (row, event) => foldWith(fold, row, event);
}

/** Every stream type's fold. */
const FOLDS: { readonly [T in StreamResourceType]: FoldOf<T> } = {
  virtualMachine: byTable(vmFold),
  volume: byTable(volumeFold),
  snapshot: byTable(snapshotFold),
  host: byTable(hostFold),
  account: byTable(accountFold),
  apiKey: byTable(apiKeyFold),
  usage: foldUsage,
  accessKey: foldAccessKey,
};

/**
 * A projector that reads old events through `registry`'s upcasters (default: the real ones). The
 * stores call {@link projector}; tests build one with their own registry.
 */
export function createProjector(registry?: UpcastRegistry): Projector {
  return (current, stored) => {
    const event = registry === undefined ? upcast(stored) : upcast(stored, registry);
    const type = current === null ? typeOfEvent(event.type) : (current.type as StreamResourceType);
    assert(
      current === null || current.version + 1 === event.version,
      `projector: ${event.stream} v${event.version} after v${current?.version ?? 0}`,
    );
    const row = current === null ? null : (current.data as unknown as Row);
    const next = foldRow(type, row, event);
    const hosts = hostsOf(next);
    return {
      stream: event.stream,
      type: next.type,
      accountId: next.accountId,
      version: event.version,
      data: next as unknown as JsonObject,
      ...(hosts.length === 0 ? {} : { hosts }),
    };
  };
}

/**
 * The hosts a row is on, sorted and without repeats: a VM's compute host and the host it was last
 * observed on; a volume's or snapshot's storage node and the node it was last observed on. What a
 * host's inventory can speak for (src/control/background/observe.ts) is always among these.
 */
export function hostsOf(row: Row): string[] {
  let placed: string | null;
  let seen: string | null;
  switch (row.type) {
    case 'virtualMachine':
      placed = row.hostId;
      seen = row.observed?.hostId ?? null;
      break;
    case 'volume':
    case 'snapshot':
      placed = row.storageNodeId;
      seen = row.observed?.storageNodeId ?? null;
      break;
    default:
      return [];
  }
  const hosts: string[] = [];
  if (placed !== null) hosts.push(placed);
  if (seen !== null && seen !== placed) hosts.push(seen);
  return hosts.sort();
}

/** Folds one event into a row (the port's `Projector`). Never returns null: rows become tombstones. */
export const projector = createProjector();

/** Folds an event into a row; `row` is null only for the stream's first event. */
export function foldRow(type: StreamResourceType, row: Row | null, event: StoredEvent): Row {
  if (!Object.hasOwn(FOLDS, type)) return assertNever(type as never, 'resource type');
  return (FOLDS[type] as FoldOf<StreamResourceType>)(row, event);
}
