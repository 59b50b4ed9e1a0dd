/**
 * Checks the shape of agent commands as they arrive from the bus. The bus carries whatever anyone
 * published (a newer main loop, a corrupt payload, a test), so agents never trust a message's
 * fields because its `type` matches: a malformed command gets a result `invalid-command` (when it
 * has a command id to answer to) and no effect.
 */
import type { BusMessage } from '../../ports/bus.ts';
import type {
  CommandDisk,
  SnapshotEnsureCommand,
  VmEnsureCommand,
  VolumeEnsureCommand,
  VolumeRestoreCommand,
} from '../../model/commands.ts';

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

function problem<T>(text: string): Parsed<T> {
  return { ok: false, problem: text };
}

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

function common(m: Fields): string | null {
  if (!isString(m['commandId'])) return 'commandId must be a non-empty string';
  if (!isToken(m['token'])) return 'token must be a non-negative integer';
  return null;
}

function parseDisk(value: unknown, index: number): CommandDisk | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return `disks[${index}] must be an object`;
  const d = value as Fields;
  if (!isString(d['target'])) return `disks[${index}].target must be a non-empty string`;
  if (!isString(d['volumeId'])) return `disks[${index}].volumeId must be a non-empty string`;
  if (typeof d['source'] !== 'string') return `disks[${index}].source must be a string`;
  if (typeof d['storageNodeId'] !== 'string')
    return `disks[${index}].storageNodeId must be a string`;
  return {
    target: d['target'],
    volumeId: d['volumeId'],
    source: d['source'],
    storageNodeId: d['storageNodeId'],
  };
}

/** Parses a `vm.ensure` message. */
export function parseVmEnsure(message: BusMessage): Parsed<VmEnsureCommand> {
  const m = message as Fields;
  const bad = common(m);
  if (bad !== null) return problem(bad);
  if (!isString(m['vmId'])) return problem('vmId must be a non-empty string');
  const power = m['power'];
  if (power !== 'running' && power !== 'stopped' && power !== 'absent')
    return problem('power must be running, stopped or absent');
  const spec = m['spec'];
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec))
    return problem('spec must be an object');
  const s = spec as Fields;
  if (!isCount(s['vcpus'])) return problem('spec.vcpus must be a positive integer');
  if (!isCount(s['memoryMb'])) return problem('spec.memoryMb must be a positive integer');
  const rawDisks = s['disks'];
  if (!Array.isArray(rawDisks)) return problem('spec.disks must be a list');
  const disks: CommandDisk[] = [];
  for (const [i, raw] of (rawDisks as unknown[]).entries()) {
    const disk = parseDisk(raw, i);
    if (typeof disk === 'string') return problem(`spec.${disk}`);
    disks.push(disk);
  }
  return {
    ok: true,
    command: {
      type: 'vm.ensure',
      commandId: m['commandId'] as string,
      token: m['token'] as number,
      vmId: m['vmId'],
      spec: { vcpus: s['vcpus'], memoryMb: s['memoryMb'], disks },
      power,
    },
  };
}

/** Parses a `volume.ensure` message. */
export function parseVolumeEnsure(message: BusMessage): Parsed<VolumeEnsureCommand> {
  const m = message as Fields;
  const bad = common(m);
  if (bad !== null) return problem(bad);
  if (!isString(m['volumeId'])) return problem('volumeId must be a non-empty string');
  if (typeof m['present'] !== 'boolean') return problem('present must be true or false');
  // The main loop sends 0 with `present: false`: the size only matters for a volume to keep.
  if (!isToken(m['sizeBytes'])) return problem('sizeBytes must be a non-negative integer');
  const origin = m['origin'];
  if (origin !== null && !(isString(origin) && origin.includes('@')))
    return problem('origin must be null or a snapshot name dataset@snapshot');
  return {
    ok: true,
    command: {
      type: 'volume.ensure',
      commandId: m['commandId'] as string,
      token: m['token'] as number,
      volumeId: m['volumeId'],
      present: m['present'],
      sizeBytes: m['sizeBytes'],
      origin,
    },
  };
}

/** Parses a `snapshot.ensure` message. */
export function parseSnapshotEnsure(message: BusMessage): Parsed<SnapshotEnsureCommand> {
  const m = message as Fields;
  const bad = common(m);
  if (bad !== null) return problem(bad);
  if (!isString(m['snapshotId'])) return problem('snapshotId must be a non-empty string');
  if (!isString(m['volumeId'])) return problem('volumeId must be a non-empty string');
  if (typeof m['present'] !== 'boolean') return problem('present must be true or false');
  return {
    ok: true,
    command: {
      type: 'snapshot.ensure',
      commandId: m['commandId'] as string,
      token: m['token'] as number,
      snapshotId: m['snapshotId'],
      volumeId: m['volumeId'],
      present: m['present'],
    },
  };
}

/** Parses a `volume.restore` message. */
export function parseVolumeRestore(message: BusMessage): Parsed<VolumeRestoreCommand> {
  const m = message as Fields;
  const bad = common(m);
  if (bad !== null) return problem(bad);
  if (!isString(m['volumeId'])) return problem('volumeId must be a non-empty string');
  if (!isString(m['snapshotId'])) return problem('snapshotId must be a non-empty string');
  if (!isString(m['snapshot']) || !m['snapshot'].includes('@'))
    return problem('snapshot must be a snapshot name dataset@snapshot');
  return {
    ok: true,
    command: {
      type: 'volume.restore',
      commandId: m['commandId'] as string,
      token: m['token'] as number,
      volumeId: m['volumeId'],
      snapshotId: m['snapshotId'],
      snapshot: m['snapshot'],
    },
  };
}
