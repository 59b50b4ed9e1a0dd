/**
 * The projector: folds each stored event into its stream's projection row. Pure and deterministic
 * (the port's `Projector`), so projections can be rebuilt from the log at any time and the in-memory
 * and SQL stores agree row for row.
 *
 * For every event it updates the row's fields, then feeds the matching event to the resource's
 * lifecycle machine to get the new `state`, then "settles": it feeds the machine once more what the
 * current observation implies. Settling matters because observations are written only on change:
 * a VM asked to stop and then to start again before anything happened is still observed running,
 * and no new observation will come to move it from `starting` to `running`.
 *
 * Attempts reset whenever the state changes or the user asks for something: a new goal gets the
 * full budget of attempts. The last failure reason (`lastError`, shown in `transitioningMessage`)
 * outlives progress toward the same goal — a start that failed for lack of memory still moves the
 * VM from creating to starting, as the domain got defined — and is cleared only when the resource
 * settles (the operation succeeded) or a new goal begins (the user asked again, a new placement).
 * Removed resources stay as tombstones (state `removed`, `removed` set).
 */
import { assert, assertNever, AssertionError } from '../lib/assert.ts';
import {
  dataOf,
  upcast,
  type EventDataMap,
  type EventType,
  type UpcastRegistry,
} from './events.ts';
import { stepState, transitioningOf, type MachineEventOf } from './lifecycle.ts';
import {
  BYTES_PER_GB,
  type AccessKeyRow,
  type AccountRow,
  type ApiKeyRow,
  type HostRow,
  type MachineType,
  type Row,
  type RowCommon,
  type SnapshotRow,
  type StreamResourceType,
  type UsageRow,
  type VmDesired,
  type VmRow,
  type VolumeRow,
} from './resources.ts';
import type { JsonObject, Projection, StoredEvent } from './stream.ts';

/** Mutable view of a row while folding. */
type Draft<T> = { -readonly [K in keyof T]: T[K] };

function common(
  id: string,
  type: StreamResourceType,
  accountId: string | null,
  name: string,
  event: StoredEvent,
  state: string,
): RowCommon {
  return {
    id,
    type,
    accountId,
    name,
    created: event.meta.atMs,
    removed: null,
    rev: event.version,
    state,
    transitioning: 'no',
    transitioningMessage: null,
    transitioningProgress: null,
    attempts: 0,
    nextAttemptAtMs: null,
    lastError: null,
    lastCommand: null,
    lastResult: null,
  };
}

/** The type of row a stream's events create, from the first event's prefix. */
function typeOfEvent(type: string): StreamResourceType {
  const prefix = type.slice(0, type.indexOf('.'));
  switch (prefix) {
    case 'vm':
      return 'virtualMachine';
    case 'volume':
      return 'volume';
    case 'snapshot':
      return 'snapshot';
    case 'host':
      return 'host';
    case 'account':
      return 'account';
    case 'apikey':
      return 'apiKey';
    case 'usage':
      return 'usage';
    case 'accesskey':
      return 'accessKey';
    default:
      throw new AssertionError(`projector: unknown event prefix in ${type}`);
  }
}

/**
 * A projector that reads old events through `registry`'s upcasters (default: the real ones). The
 * stores call {@link projector}; tests build one with their own registry.
 */
export function createProjector(
  registry?: UpcastRegistry,
): (current: Projection | null, stored: StoredEvent) => Projection | null {
  return (current, stored) => {
    const event = registry === undefined ? upcast(stored) : upcast(stored, registry);
    const type = current === null ? typeOfEvent(event.type) : (current.type as StreamResourceType);
    assert(
      current === null || current.version + 1 === event.version,
      `projector: ${event.stream} v${event.version} after v${current?.version ?? 0}`,
    );
    const row = current === null ? null : (current.data as unknown as Row);
    const next = foldRow(type, row, event);
    return {
      stream: event.stream,
      type: next.type,
      accountId: next.accountId,
      version: event.version,
      data: next as unknown as JsonObject,
    };
  };
}

/** Folds one event into a row (the port's `Projector`). Never returns null: rows become tombstones. */
export const projector = createProjector();

/** Folds an event into a row; `row` is null only for the stream's first event. */
export function foldRow(type: StreamResourceType, row: Row | null, event: StoredEvent): Row {
  switch (type) {
    case 'virtualMachine':
      return foldVm(row as VmRow | null, event);
    case 'volume':
      return foldVolume(row as VolumeRow | null, event);
    case 'snapshot':
      return foldSnapshot(row as SnapshotRow | null, event);
    case 'host':
      return foldHost(row as HostRow | null, event);
    case 'account':
      return foldAccount(row as AccountRow | null, event);
    case 'apiKey':
      return foldApiKey(row as ApiKeyRow | null, event);
    case 'usage':
      return foldUsage(row as UsageRow | null, event);
    case 'accessKey':
      return foldAccessKey(row as AccessKeyRow | null, event);
    default:
      return assertNever(type, 'resource type');
  }
}

function is<T extends EventType>(event: StoredEvent, type: T): event is StoredEvent & { type: T } {
  return event.type === type;
}

function d<T extends EventType>(event: StoredEvent, type: T): EventDataMap[T] {
  return dataOf(event, type);
}

function requireRow<T>(row: T | null, event: StoredEvent): T {
  assert(row !== null, `projector: ${event.type} on ${event.stream} before its creation`);
  return row;
}

/**
 * Shared bookkeeping of the reconciled types: command-sent, attempt-failed, waiting, failed,
 * removed, command-reported, progress-reported. Returns the machine event to feed, `undefined`
 * if the event is not one of them, or null if it is one but moves no state.
 */
function foldBookkeeping<R extends Draft<RowCommon>>(
  r: R,
  event: StoredEvent,
  prefix: 'vm' | 'volume' | 'snapshot',
): { type: 'FAILED' } | { type: 'REMOVED' } | null | undefined {
  const suffix = event.type.slice(prefix.length + 1);
  switch (suffix) {
    case 'command-sent': {
      const x = d(event, `${prefix}.command-sent`);
      r.lastCommand = {
        commandId: x.commandId,
        command: x.command,
        hostId: x.hostId,
        attempt: x.attempt,
        token: x.token,
        sentAtMs: event.meta.atMs,
        goal: x.goal,
      };
      r.attempts = x.attempt;
      r.nextAttemptAtMs = x.nextAttemptAtMs;
      // The reason the previous attempt failed stays visible while the next one is in flight.
      r.transitioningMessage =
        r.lastError !== null
          ? `retrying (attempt ${x.attempt}) after: ${r.lastError}`
          : x.attempt > 1
            ? `retrying (attempt ${x.attempt})`
            : null;
      return null;
    }
    case 'attempt-failed': {
      const x = d(event, `${prefix}.attempt-failed`);
      r.attempts = x.attempt;
      r.nextAttemptAtMs = x.nextAttemptAtMs;
      r.lastError = x.reason;
      r.transitioningMessage = x.reason;
      return null;
    }
    case 'waiting':
      r.transitioningMessage = d(event, `${prefix}.waiting`).message;
      return null;
    case 'failed':
      r.lastError = d(event, `${prefix}.failed`).reason;
      return { type: 'FAILED' };
    case 'removed':
      r.removed = event.meta.atMs;
      return { type: 'REMOVED' };
    case 'command-reported': {
      const x = d(event, `${prefix}.command-reported`);
      r.lastResult = { commandId: x.commandId, ok: x.ok, error: x.error, atMs: event.meta.atMs };
      if (!x.ok && r.lastCommand?.commandId === x.commandId) {
        r.lastError = x.error ?? 'command failed';
        if (r.transitioning === 'yes') r.transitioningMessage = r.lastError;
      }
      return null;
    }
    case 'progress-reported': {
      const x = d(event, `${prefix}.progress-reported`);
      r.transitioningMessage = x.message;
      r.transitioningProgress = x.progress;
      return null;
    }
    default:
      return undefined;
  }
}

/**
 * Applies `events` to the row's machine in order, then updates the transitioning fields and resets
 * attempts on a state change. `newGoal`: the event starts a new goal (a user request, a new
 * placement or attachment): attempts reset and the last failure is forgotten. A state change toward
 * the same goal resets attempts but keeps the last failure reason until the state settles.
 */
function advance<T extends MachineType, R extends Draft<RowCommon>>(
  type: T,
  r: R,
  events: readonly (MachineEventOf[T] | null)[],
  newGoal: boolean,
): void {
  const before = r.state;
  let state = before;
  for (const e of events) if (e !== null) state = stepState(type, state, e);
  r.state = state;
  // Removal is recorded only for a resource being deleted; anything else is a planner bug.
  if (events.some((e) => e?.type === 'REMOVED'))
    assert(state === 'removed', `${type} ${r.id}: removed while ${before}`);
  r.transitioning = transitioningOf(type, state);
  if (state !== before || newGoal) {
    r.attempts = 0;
    r.nextAttemptAtMs = null;
    r.transitioningProgress = null;
    if (state === 'error') {
      // The error state shows its reason (below).
    } else if (newGoal || r.transitioning === 'no') {
      // Asked again, or done: an old failure says nothing about this.
      r.lastError = null;
      r.transitioningMessage = null;
    } else {
      // Progress toward the same goal: the reason the last attempt failed stays visible.
      r.transitioningMessage = r.lastError;
    }
  }
  if (state === 'error') r.transitioningMessage = r.lastError ?? 'failed';
}

// ---------------------------------------------------------------------------------------------
// Virtual machines.

/** The machine event the VM's current observation implies, or null (no observation of its host). */
function vmObservationEvent(r: VmRow): MachineEventOf['virtualMachine'] | null {
  const o = r.observed;
  if (o === null || r.hostId === null || o.hostId !== r.hostId) return null;
  const desired: VmDesired = r.desired;
  switch (o.domain) {
    case 'running':
    case 'paused':
      return { type: 'REACHED_RUNNING', desired };
    case 'shutoff':
    case 'crashed':
      return { type: 'REACHED_STOPPED', desired };
    case 'absent':
      return { type: 'REACHED_ABSENT', desired };
    default:
      return assertNever(o.domain, 'domain state');
  }
}

function foldVm(row: VmRow | null, event: StoredEvent): VmRow {
  if (is(event, 'vm.created')) {
    assert(row === null, `vm.created on existing ${event.stream}`);
    const x = d(event, 'vm.created');
    const r: VmRow = {
      ...common(event.stream, 'virtualMachine', x.accountId, x.name, event, 'creating'),
      type: 'virtualMachine',
      accountId: x.accountId,
      desired: x.desired,
      imageId: x.imageId,
      vcpus: x.vcpus,
      memoryMb: x.memoryMb,
      rootDiskGb: x.rootDiskGb,
      rootVolumeId: x.rootVolumeId,
      volumeIds: [...x.volumeIds],
      hostId: null,
      observed: null,
      transitioning: 'yes',
    };
    return r;
  }
  // Only the version matters: it serialises changes to the VM's extra storage.
  if (is(event, 'vm.storage-changed')) return { ...requireRow(row, event), rev: event.version };
  const r: Draft<VmRow> = { ...requireRow(row, event), rev: event.version };
  const bookkeeping = foldBookkeeping(r, event, 'vm');
  let primary: MachineEventOf['virtualMachine'] | null = bookkeeping ?? null;
  let user = false;
  if (bookkeeping === undefined) {
    switch (event.type) {
      case 'vm.start-requested':
        r.desired = 'running';
        primary = { type: 'START' };
        user = true;
        break;
      case 'vm.stop-requested':
        r.desired = 'stopped';
        primary = { type: 'STOP' };
        user = true;
        break;
      case 'vm.restart-requested':
        r.desired = 'running';
        primary = { type: 'RESTART' };
        user = true;
        break;
      case 'vm.delete-requested':
        r.desired = 'deleted';
        primary = { type: 'DELETE' };
        user = true;
        break;
      case 'vm.renamed':
        r.name = d(event, 'vm.renamed').name;
        break;
      case 'vm.volume-attached': {
        const id = d(event, 'vm.volume-attached').volumeId;
        if (!r.volumeIds.includes(id)) r.volumeIds = [...r.volumeIds, id];
        user = true;
        break;
      }
      case 'vm.volume-detached': {
        const id = d(event, 'vm.volume-detached').volumeId;
        r.volumeIds = r.volumeIds.filter((v) => v !== id);
        user = true;
        break;
      }
      case 'vm.placed':
        r.hostId = d(event, 'vm.placed').hostId;
        // A new host is a new goal: the attempts toward the old one do not count.
        user = true;
        break;
      case 'vm.unplaced':
        r.hostId = null;
        user = true;
        break;
      case 'vm.observed': {
        const x = d(event, 'vm.observed');
        // "Absent" from a host that is neither the VM's nor the one it was last seen on says
        // nothing new (a late inventory after an evacuation): keep the observation that matters.
        const current = r.observed;
        if (
          x.domain === 'absent' &&
          x.hostId !== r.hostId &&
          current !== null &&
          current.hostId !== x.hostId
        )
          break;
        r.observed = {
          hostId: x.hostId,
          domain: x.domain,
          disks: x.disks === null ? null : [...x.disks],
          atMs: event.meta.atMs,
        };
        break;
      }
      default:
        throw new AssertionError(`projector: unexpected ${event.type} on a virtual machine`);
    }
  }
  // Feed the event, then settle once on the current observation.
  const settle = r.state === 'removed' ? null : vmObservationEvent(r);
  advance('virtualMachine', r, [primary, settle], user);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Volumes.

/** True when the volume is observed on its node at (at least) its desired size. */
export function volumeObservedReady(r: VolumeRow): boolean {
  const o = r.observed;
  if (o === null || r.storageNodeId === null || o.storageNodeId !== r.storageNodeId) return false;
  return o.present && (o.sizeBytes === null || o.sizeBytes >= r.sizeGb * BYTES_PER_GB);
}

function foldVolume(row: VolumeRow | null, event: StoredEvent): VolumeRow {
  if (is(event, 'volume.created')) {
    assert(row === null, `volume.created on existing ${event.stream}`);
    const x = d(event, 'volume.created');
    const r: VolumeRow = {
      ...common(event.stream, 'volume', x.accountId, x.name, event, 'creating'),
      type: 'volume',
      accountId: x.accountId,
      desired: 'present',
      sizeGb: x.sizeGb,
      root: x.root,
      imageId: x.imageId,
      sourceSnapshotId: x.sourceSnapshotId,
      virtualMachineId: x.virtualMachineId,
      storageNodeId: x.storageNodeId,
      restoreSnapshotId: null,
      observed: null,
      transitioning: 'yes',
    };
    return r;
  }
  const r: Draft<VolumeRow> = { ...requireRow(row, event), rev: event.version };
  const bookkeeping = foldBookkeeping(r, event, 'volume');
  let primary: MachineEventOf['volume'] | null = bookkeeping ?? null;
  let user = false;
  if (bookkeeping === undefined) {
    switch (event.type) {
      case 'volume.attached':
        r.virtualMachineId = d(event, 'volume.attached').virtualMachineId;
        primary = { type: 'ATTACH' };
        user = true;
        break;
      case 'volume.detached':
        r.virtualMachineId = null;
        primary = { type: 'DETACH' };
        user = true;
        break;
      case 'volume.grow-requested':
        r.sizeGb = d(event, 'volume.grow-requested').sizeGb;
        primary = { type: 'GROW' };
        user = true;
        break;
      case 'volume.restore-requested':
        r.restoreSnapshotId = d(event, 'volume.restore-requested').snapshotId;
        primary = { type: 'RESTORE' };
        user = true;
        break;
      case 'volume.delete-requested':
        r.desired = 'deleted';
        r.restoreSnapshotId = null;
        primary = { type: 'DELETE' };
        user = true;
        break;
      case 'volume.renamed':
        r.name = d(event, 'volume.renamed').name;
        break;
      case 'volume.placed':
        r.storageNodeId = d(event, 'volume.placed').storageNodeId;
        user = true;
        break;
      case 'volume.observed': {
        const x = d(event, 'volume.observed');
        const wasPresent =
          r.observed !== null && r.observed.present && r.observed.storageNodeId === x.storageNodeId;
        r.observed = {
          storageNodeId: x.storageNodeId,
          present: x.present,
          sizeBytes: x.sizeBytes,
          origin: x.origin,
          atMs: event.meta.atMs,
        };
        // Losing a dataset that existed is edge-triggered; the ready case settles below.
        if (wasPresent && !x.present && x.storageNodeId === r.storageNodeId) {
          r.lastError = `dataset ${event.stream} vanished from ${x.storageNodeId}`;
          primary = { type: 'LOST' };
        }
        break;
      }
      default:
        throw new AssertionError(`projector: unexpected ${event.type} on a volume`);
    }
  }
  if (is(event, 'volume.command-reported')) {
    // A rollback is only observable through its result.
    const x = d(event, 'volume.command-reported');
    const c = r.lastCommand;
    if (x.ok && c !== null && c.commandId === x.commandId && c.command === 'volume.restore') {
      r.restoreSnapshotId = null;
      primary = { type: 'RESTORED', attached: r.virtualMachineId !== null };
    }
  }
  if (primary?.type === 'FAILED') r.restoreSnapshotId = null;
  const settle =
    r.state !== 'removed' && volumeObservedReady(r)
      ? ({ type: 'REACHED_PRESENT', attached: r.virtualMachineId !== null } as const)
      : null;
  advance('volume', r, [primary, settle], user);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

function foldSnapshot(row: SnapshotRow | null, event: StoredEvent): SnapshotRow {
  if (is(event, 'snapshot.created')) {
    assert(row === null, `snapshot.created on existing ${event.stream}`);
    const x = d(event, 'snapshot.created');
    const r: SnapshotRow = {
      ...common(event.stream, 'snapshot', x.accountId, x.name, event, 'creating'),
      type: 'snapshot',
      accountId: x.accountId,
      desired: 'present',
      volumeId: x.volumeId,
      sizeGb: x.sizeGb,
      storageNodeId: x.storageNodeId,
      observed: null,
      transitioning: 'yes',
    };
    return r;
  }
  // Only the version matters: it serialises clones against the snapshot's deletion.
  if (is(event, 'snapshot.clone-registered'))
    return { ...requireRow(row, event), rev: event.version };
  const r: Draft<SnapshotRow> = { ...requireRow(row, event), rev: event.version };
  const bookkeeping = foldBookkeeping(r, event, 'snapshot');
  let primary: MachineEventOf['snapshot'] | null = bookkeeping ?? null;
  let user = false;
  if (bookkeeping === undefined) {
    switch (event.type) {
      case 'snapshot.delete-requested':
        r.desired = 'deleted';
        primary = { type: 'DELETE' };
        user = true;
        break;
      case 'snapshot.renamed':
        r.name = d(event, 'snapshot.renamed').name;
        break;
      case 'snapshot.placed':
        r.storageNodeId = d(event, 'snapshot.placed').storageNodeId;
        user = true;
        break;
      case 'snapshot.observed': {
        const x = d(event, 'snapshot.observed');
        const wasPresent =
          r.observed !== null && r.observed.present && r.observed.storageNodeId === x.storageNodeId;
        r.observed = {
          storageNodeId: x.storageNodeId,
          present: x.present,
          sizeBytes: x.sizeBytes,
          atMs: event.meta.atMs,
        };
        if (wasPresent && !x.present && x.storageNodeId === r.storageNodeId) {
          r.lastError = `snapshot ${event.stream} vanished from ${x.storageNodeId}`;
          primary = { type: 'LOST' };
        }
        break;
      }
      default:
        throw new AssertionError(`projector: unexpected ${event.type} on a snapshot`);
    }
  }
  const o = r.observed;
  const ready =
    r.state !== 'removed' &&
    o !== null &&
    o.present &&
    r.storageNodeId !== null &&
    o.storageNodeId === r.storageNodeId;
  advance('snapshot', r, [primary, ready ? { type: 'REACHED_PRESENT' } : null], user);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Hosts.

function foldHost(row: HostRow | null, event: StoredEvent): HostRow {
  if (is(event, 'host.created')) {
    assert(row === null, `host.created on existing ${event.stream}`);
    const x = d(event, 'host.created');
    return {
      ...common(event.stream, 'host', null, x.name, event, 'registering'),
      type: 'host',
      accountId: null,
      desired: 'present',
      kind: x.kind,
      vcpus: x.vcpus,
      memoryMb: x.memoryMb,
      poolSizeGb: x.poolSizeGb,
      online: false,
      observed: null,
    };
  }
  const r: Draft<HostRow> = { ...requireRow(row, event), rev: event.version };
  let primary: MachineEventOf['host'] | null = null;
  switch (event.type) {
    case 'host.maintenance-requested':
      primary = { type: 'MAINTENANCE' };
      break;
    case 'host.activate-requested':
      primary = { type: 'ACTIVATE' };
      break;
    case 'host.removed':
      r.desired = 'deleted';
      r.removed = event.meta.atMs;
      primary = { type: 'REMOVE' };
      break;
    case 'host.up': {
      const x = d(event, 'host.up');
      r.online = true;
      r.observed = {
        vcpus: x.vcpus,
        memoryMb: x.memoryMb,
        poolSizeBytes: x.poolSizeBytes,
        atMs: event.meta.atMs,
      };
      primary = { type: 'UP' };
      break;
    }
    case 'host.down':
      r.online = false;
      primary = { type: 'DOWN' };
      break;
    case 'host.placement-recorded':
      // Only the version matters: it serialises placements on this host.
      break;
    case 'host.renamed':
      r.name = d(event, 'host.renamed').name;
      break;
    default:
      throw new AssertionError(`projector: unexpected ${event.type} on a host`);
  }
  // Settle: an active host that is offline is down, a down host that is online is active.
  let state = primary === null ? r.state : stepState('host', r.state, primary);
  if (state === 'active' && !r.online) state = stepState('host', state, { type: 'DOWN' });
  if (state === 'down' && r.online) state = stepState('host', state, { type: 'UP' });
  r.state = state;
  r.transitioning = transitioningOf('host', state);
  r.transitioningMessage =
    state === 'down' ? 'no reports from the host' : state === 'maintenance' ? 'evacuating' : null;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Accounts, api keys, usage.

function foldAccount(row: AccountRow | null, event: StoredEvent): AccountRow {
  if (is(event, 'account.created')) {
    assert(row === null, `account.created on existing ${event.stream}`);
    const x = d(event, 'account.created');
    return {
      // An account belongs to itself, so an account's own queries include it.
      ...common(event.stream, 'account', event.stream, x.name, event, 'active'),
      type: 'account',
      accountId: event.stream,
      desired: 'present',
      kind: x.kind,
      observed: null,
    };
  }
  const r: Draft<AccountRow> = { ...requireRow(row, event), rev: event.version };
  switch (event.type) {
    case 'account.renamed':
      r.name = d(event, 'account.renamed').name;
      return r;
    case 'account.removed':
      r.desired = 'deleted';
      r.state = 'removed';
      r.removed = event.meta.atMs;
      return r;
    default:
      throw new AssertionError(`projector: unexpected ${event.type} on an account`);
  }
}

function foldApiKey(row: ApiKeyRow | null, event: StoredEvent): ApiKeyRow {
  if (is(event, 'apikey.created')) {
    assert(row === null, `apikey.created on existing ${event.stream}`);
    const x = d(event, 'apikey.created');
    return {
      ...common(event.stream, 'apiKey', x.accountId, x.name, event, 'active'),
      type: 'apiKey',
      accountId: x.accountId,
      desired: 'present',
      publicValue: x.publicValue,
      secretHash: x.secretHash,
      salt: x.salt,
      observed: null,
    };
  }
  const r: Draft<ApiKeyRow> = { ...requireRow(row, event), rev: event.version };
  switch (event.type) {
    case 'apikey.revoked':
      r.desired = 'deleted';
      r.state = 'removed';
      r.removed = event.meta.atMs;
      return r;
    case 'apikey.renamed':
      r.name = d(event, 'apikey.renamed').name;
      return r;
    default:
      throw new AssertionError(`projector: unexpected ${event.type} on an api key`);
  }
}

function foldAccessKey(row: AccessKeyRow | null, event: StoredEvent): AccessKeyRow {
  assert(
    is(event, 'accesskey.claimed') && row === null,
    `projector: unexpected ${event.type} on access key lookup ${event.stream}`,
  );
  return {
    ...common(event.stream, 'accessKey', null, event.stream, event, 'active'),
    type: 'accessKey',
    accountId: null,
    desired: 'present',
    keyId: d(event, 'accesskey.claimed').keyId,
    observed: null,
  };
}

function foldUsage(row: UsageRow | null, event: StoredEvent): UsageRow {
  assert(is(event, 'usage.recorded'), `projector: unexpected ${event.type} on a usage stream`);
  const x = d(event, 'usage.recorded');
  const base: UsageRow =
    row ??
    ({
      ...common(event.stream, 'usage', x.accountId, event.stream, event, 'active'),
      type: 'usage',
      accountId: x.accountId,
      desired: 'present',
      totals: {},
      records: 0,
      recordedUntilMs: {},
      observed: null,
    } satisfies UsageRow);
  const previousUntil = base.recordedUntilMs[x.resourceId] ?? 0;
  return {
    ...base,
    rev: event.version,
    totals: { ...base.totals, [x.metric]: (base.totals[x.metric] ?? 0) + x.quantity },
    records: base.records + 1,
    recordedUntilMs: { ...base.recordedUntilMs, [x.resourceId]: Math.max(previousUntil, x.toMs) },
  };
}
