/**
 * Checks the shape of agent commands as they arrive from the bus. The bus carries whatever anyone
 * published (a newer main loop, a corrupt payload, a test), so agents never trust a message's
 * fields because its `type` matches: a malformed command gets a result `invalid-command` (when it
 * has a command id to answer to) and no effect.
 *
 * Each command type is described once, as a table of field readers checked in order; the first
 * malformed field names the problem (`spec.disks[0].target must be a non-empty string`).
 */
import type { BusMessage } from '../../ports/bus.ts';
import type { AgentCommand, AgentCommandType, Power } from '../../model/commands.ts';

/** Result error code of a malformed command. */
export const INVALID_COMMAND = 'invalid-command';

/** A parsed command, or why it is malformed. */
export type Parsed<T> =
  { readonly ok: true; readonly command: T } | { readonly ok: false; readonly problem: string };

type Fields = { readonly [key: string]: unknown };

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isToken = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isSnapshotName = (v: unknown): v is string => isString(v) && v.includes('@');

/** The command id of a message, if it has a usable one (to answer a malformed command). */
export function commandIdOf(message: BusMessage): string | null {
  const id = (message as Fields)['commandId'];
  return isString(id) ? id : null;
}

/**
 * The resource a possibly malformed command is about, as the model's `commandResource` names it
 * (`snapshotId` for snapshot commands, else `vmId` or `volumeId`), or `''` when it has none.
 */
export function resourceOf(message: BusMessage): string {
  const m = message as Fields;
  const candidates =
    message.type === 'snapshot.ensure'
      ? [m['snapshotId']]
      : [m['vmId'], m['volumeId'], m['snapshotId']];
  for (const candidate of candidates) if (isString(candidate)) return candidate;
  return '';
}

// ---- field readers ----

/** Why a field is malformed: what a reader returns instead of the field's value. */
class Malformed {
  constructor(readonly problem: string) {}
}

/** Reads the field named `name` (its path, for the problem): its value, or why it is malformed. */
type Reader<T> = (value: unknown, name: string) => T | Malformed;

/** A reader per field of `T`, checked in key order. */
type Shape<T> = { readonly [K in keyof T]: Reader<T[K]> };

/** A reader accepting the values `accepts` admits; any other value "`name` `should`". */
function field<T>(accepts: (v: unknown) => v is T, should: string): Reader<T> {
  return (value, name) => (accepts(value) ? value : new Malformed(`${name} ${should}`));
}

const nonEmpty = field(isString, 'must be a non-empty string');
const text = field((v): v is string => typeof v === 'string', 'must be a string');
const natural = field(isToken, 'must be a non-negative integer');
const positive = field(isCount, 'must be a positive integer');
const flag = field((v): v is boolean => typeof v === 'boolean', 'must be true or false');
const snapshotName = field(isSnapshotName, 'must be a snapshot name dataset@snapshot');
const power = field(
  (v): v is Power => v === 'running' || v === 'stopped' || v === 'absent',
  'must be running, stopped or absent',
);
const origin = field(
  (v): v is string | null => v === null || isSnapshotName(v),
  'must be null or a snapshot name dataset@snapshot',
);

/** Reads the fields of `shape` from `fields` (their names prefixed with `prefix`), in order. */
function readFields<T>(fields: Fields, shape: Shape<T>, prefix: string): T | Malformed {
  const read: Partial<Record<keyof T, unknown>> = {};
  for (const key of Object.keys(shape) as (keyof T & string)[]) {
    const value = shape[key](fields[key], `${prefix}${key}`);
    if (value instanceof Malformed) return value;
    read[key] = value;
  }
  return read as T;
}

/** A nested object holding only the fields of `shape`. */
function object<T>(shape: Shape<T>): Reader<T> {
  return (value, name) =>
    value === null || typeof value !== 'object' || Array.isArray(value)
      ? new Malformed(`${name} must be an object`)
      : readFields(value as Fields, shape, `${name}.`);
}

/** A list whose items `item` reads (named `name[i]`). */
function list<T>(item: Reader<T>): Reader<T[]> {
  return (value, name) => {
    if (!Array.isArray(value)) return new Malformed(`${name} must be a list`);
    const items: T[] = [];
    for (const [i, raw] of (value as unknown[]).entries()) {
      const read = item(raw, `${name}[${i}]`);
      if (read instanceof Malformed) return read;
      items.push(read);
    }
    return items;
  };
}

// ---- commands ----

/** The command of type `T`. */
export type CommandOf<T extends AgentCommandType> = Extract<AgentCommand, { readonly type: T }>;

const COMMON = { commandId: nonEmpty, token: natural };

/** The fields of each command type, in the order they are checked. */
const COMMANDS: { readonly [T in AgentCommandType]: Shape<Omit<CommandOf<T>, 'type'>> } = {
  'vm.ensure': {
    ...COMMON,
    vmId: nonEmpty,
    power,
    spec: object({
      vcpus: positive,
      memoryMb: positive,
      disks: list(
        object({ target: nonEmpty, volumeId: nonEmpty, source: text, storageNodeId: text }),
      ),
    }),
  },
  'volume.ensure': {
    ...COMMON,
    volumeId: nonEmpty,
    present: flag,
    // The main loop sends 0 with `present: false`: the size only matters for a volume to keep.
    sizeBytes: natural,
    origin,
  },
  'snapshot.ensure': { ...COMMON, snapshotId: nonEmpty, volumeId: nonEmpty, present: flag },
  'volume.restore': { ...COMMON, volumeId: nonEmpty, snapshotId: nonEmpty, snapshot: snapshotName },
};

/**
 * Parses `message` as a command when its type is one of `types` (the commands an agent executes);
 * null for any other message, which the caller tells apart (another agent's command, or no command).
 */
export function parseCommand<T extends AgentCommandType>(
  types: readonly T[],
  message: BusMessage,
): Parsed<CommandOf<T>> | null {
  const type = types.find((candidate) => candidate === message.type);
  if (type === undefined) return null;
  const shape = COMMANDS[type] as Shape<Omit<CommandOf<T>, 'type'>>;
  const read = readFields(message as Fields, shape, '');
  if (read instanceof Malformed) return { ok: false, problem: read.problem };
  return { ok: true, command: { type, ...read } as CommandOf<T> };
}
