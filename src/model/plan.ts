/**
 * The planner: for one VM, volume or snapshot row and the world around it, the single next step
 * toward what the user asked for. Pure: the main loop supplies the rows and the time, and turns the
 * step into events and a command with {@link stepWrite}. Because it re-derives everything from the
 * rows each time (level-triggered), a crashed, duplicated or delayed main loop only ever repeats or
 * skips a step, never takes a wrong one.
 *
 * Steps: `none` (converged, settled, or nothing can be known yet), `wait` (an attempt is in flight,
 * or the resource waits on something else: a message says what), `place`, `send` (an idempotent
 * ensure command, with backoff), `retry` (an attempt that sent nothing failed, e.g. no capacity),
 * `fail` (attempts exhausted: the error state with a reason), `finish` (record a fact: removed,
 * evacuated, detached from a removed VM, cascade a delete).
 */
import { assertNever } from '../lib/assert.ts';
import type { AgentCommand, CommandDisk, Power } from './commands.ts';
import { newEvent, type EventDataMap, type EventType } from './events.ts';
import { retryDelayMs, type RetryPolicy } from './backoff.ts';
import { chooseComputeHost, chooseStorageNode, isReachable } from './placement.ts';
import { volumeObservedReady } from './projector.ts';
import {
  BYTES_PER_GB,
  diskSource,
  diskTarget,
  imageBaseSnapshot,
  isRemoved,
  snapshotDatasetName,
  type HostRow,
  type ReconciledRow,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from './resources.ts';
import type { EventMeta, NewEvent, StreamAppend } from './stream.ts';
import type { World } from './world.ts';

/** A command before the main loop stamps it with its id and fencing token. */
export type CommandDraft = AgentCommand extends infer C
  ? C extends AgentCommand
    ? Omit<C, 'commandId' | 'token'>
    : never
  : never;

/** An event the planner wants recorded on the row's own stream. */
export type PlannedEvent = {
  [K in EventType]: { readonly type: K; readonly data: EventDataMap[K] };
}[EventType];

/** The next step for a resource. */
export type Step =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'wait';
      /** Why, for `transitioningMessage` (null: nothing to say, e.g. an attempt in flight). */
      readonly message: string | null;
      /** When to look again at the latest, ms since the epoch, or null: on the next change. */
      readonly untilMs: number | null;
    }
  | {
      readonly kind: 'place';
      readonly hostId: string;
      /** The host's version the decision was based on (the write expects it). */
      readonly hostRev: number;
    }
  | {
      readonly kind: 'send';
      readonly hostId: string;
      readonly command: CommandDraft;
      /** A digest of what is asked; a new goal is sent at once even if an attempt is in flight. */
      readonly goal: string;
    }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'fail'; readonly reason: string }
  | { readonly kind: 'finish'; readonly event: PlannedEvent };

/** What a plan needs besides the row. */
export interface PlanContext {
  readonly nowMs: number;
  readonly world: World;
  readonly policy: RetryPolicy;
}

const NONE: Step = { kind: 'none' };

function wait(message: string | null, untilMs: number | null = null): Step {
  return { kind: 'wait', message, untilMs };
}

function finish(event: PlannedEvent): Step {
  return { kind: 'finish', event };
}

/**
 * Gate for an attempt toward `goal` on `hostId`: wait while the previous attempt toward the same
 * goal is in flight, fail once the attempts are spent, else null (go ahead). `what` names the goal
 * in the failure reason.
 */
function gate(row: ReconciledRow, goal: string, ctx: PlanContext, what: string): Step | null {
  const last = row.lastCommand;
  const sameGoal = last === null || last.goal === goal;
  if (row.nextAttemptAtMs !== null && ctx.nowMs < row.nextAttemptAtMs && sameGoal)
    return wait(null, row.nextAttemptAtMs);
  if (row.attempts >= ctx.policy.maxAttempts && sameGoal) {
    const cause = row.lastError === null ? '' : `: ${row.lastError}`;
    return { kind: 'fail', reason: `${what} not done after ${row.attempts} attempts${cause}` };
  }
  return null;
}

function send(
  row: ReconciledRow,
  hostId: string,
  command: CommandDraft,
  goal: string,
  ctx: PlanContext,
  what: string,
): Step {
  return gate(row, goal, ctx, what) ?? { kind: 'send', hostId, command, goal };
}

/** {@link send} to a storage node, or wait while the node is down (its agent could not answer). */
function sendToNode(
  row: ReconciledRow,
  node: HostRow,
  command: CommandDraft,
  goal: string,
  ctx: PlanContext,
  what: string,
): Step {
  if (!isReachable(node)) return wait(`storage node ${node.id} is down: waiting for it to return`);
  return send(row, node.id, command, goal, ctx, what);
}

/** No capacity or a similar failure that sends nothing: count an attempt, or give up. */
function retry(row: ReconciledRow, reason: string, ctx: PlanContext): Step {
  if (row.nextAttemptAtMs !== null && ctx.nowMs < row.nextAttemptAtMs)
    return wait(null, row.nextAttemptAtMs);
  if (row.attempts >= ctx.policy.maxAttempts)
    return { kind: 'fail', reason: `${reason} (after ${row.attempts} attempts)` };
  return { kind: 'retry', reason };
}

/** The next step for a row. Hosts, accounts and keys are not reconciled: `none`. */
export function plan(row: ReconciledRow, ctx: PlanContext): Step {
  if (isRemoved(row) || row.state === 'removed' || row.state === 'error') return NONE;
  switch (row.type) {
    case 'virtualMachine':
      return planVm(row, ctx);
    case 'volume':
      return planVolume(row, ctx);
    case 'snapshot':
      return planSnapshot(row, ctx);
    default:
      return assertNever(row, 'row type');
  }
}

// ---------------------------------------------------------------------------------------------
// Virtual machines.

/** The VM's observation if it is about its current host, else null. */
function vmObservation(vm: VmRow) {
  const o = vm.observed;
  return o !== null && vm.hostId !== null && o.hostId === vm.hostId ? o : null;
}

/** Volume ids of a VM's disks in target order: root first, then the extra volumes. */
export function vmDiskVolumeIds(vm: VmRow): string[] {
  return [vm.rootVolumeId, ...vm.volumeIds];
}

/**
 * True when the VM has reached `power` on its host, in a stable state: running, or shut off / absent
 * with the expected disks (when the domain is defined and its disks are known).
 */
export function vmSatisfied(vm: VmRow, power: 'running' | 'stopped'): boolean {
  const o = vmObservation(vm);
  if (o === null) return false;
  if (power === 'running')
    return vm.state === 'running' && (o.domain === 'running' || o.domain === 'paused');
  if (vm.state !== 'stopped') return false;
  if (o.domain === 'running' || o.domain === 'paused') return false;
  if (o.domain === 'absent' || o.disks === null) return true;
  const expected = vmDiskVolumeIds(vm);
  return o.disks.length === expected.length && o.disks.every((d, i) => d === expected[i]);
}

/** The disks of a VM's domain, or the step to take while they are not ready. */
function vmDisks(vm: VmRow, world: World): CommandDisk[] | Step {
  const disks: CommandDisk[] = [];
  const ids = vmDiskVolumeIds(vm);
  for (const [i, id] of ids.entries()) {
    const v = world.volume(id);
    if (v === undefined) return wait(`waiting for volume ${id}`);
    if (v.state === 'error')
      return { kind: 'fail', reason: `volume ${id} failed: ${v.lastError ?? 'error'}` };
    if (isRemoved(v) || v.desired === 'deleted')
      return { kind: 'fail', reason: `volume ${id} is deleted` };
    const ready = v.state === 'available' || v.state === 'attached' || v.state === 'growing';
    if (!ready || v.storageNodeId === null) return wait(`waiting for volume ${id} (${v.state})`);
    disks.push({
      target: diskTarget(i),
      volumeId: id,
      source: diskSource(id),
      storageNodeId: v.storageNodeId,
    });
  }
  return disks;
}

function vmEnsure(vm: VmRow, disks: readonly CommandDisk[], power: Power): CommandDraft {
  return {
    type: 'vm.ensure',
    vmId: vm.id,
    spec: { vcpus: vm.vcpus, memoryMb: vm.memoryMb, disks },
    power,
  };
}

function planVm(vm: VmRow, ctx: PlanContext): Step {
  const { world } = ctx;
  const host = vm.hostId === null ? undefined : world.host(vm.hostId);
  const observed = vmObservation(vm);

  if (vm.desired === 'deleted') {
    if (
      vm.hostId === null ||
      (host !== undefined && isRemoved(host)) ||
      observed?.domain === 'absent'
    )
      return finish({ type: 'vm.removed', data: {} });
    if (host === undefined) return NONE; // not listed yet
    if (!isReachable(host)) return wait(`host ${host.id} is down: waiting for it to return`);
    return send(vm, host.id, vmEnsure(vm, [], 'absent'), 'absent', ctx, 'removing the domain');
  }

  // Evacuation: a host in maintenance (or gone) gives its VMs up once their domains are gone.
  if (
    vm.hostId !== null &&
    host !== undefined &&
    (host.state === 'maintenance' || isRemoved(host))
  ) {
    if (isRemoved(host) || observed?.domain === 'absent')
      return finish({
        type: 'vm.unplaced',
        data: {
          fromHostId: host.id,
          reason: isRemoved(host) ? 'host removed' : 'host in maintenance',
        },
      });
    if (!isReachable(host))
      return wait(`host ${host.id} is in maintenance and down: waiting for it to return`);
    return send(vm, host.id, vmEnsure(vm, [], 'absent'), 'evacuate', ctx, 'evacuating');
  }

  if (vm.hostId === null) {
    const chosen = chooseComputeHost(vm, world);
    if (chosen === null)
      return retry(vm, `no compute host has ${vm.vcpus} vcpus and ${vm.memoryMb} MB free`, ctx);
    return { kind: 'place', hostId: chosen.id, hostRev: chosen.rev };
  }
  if (host === undefined) return NONE; // placed on a host not listed yet

  const power: 'running' | 'stopped' = vm.state === 'restarting' ? 'stopped' : vm.desired;
  if (vmSatisfied(vm, power)) return NONE;

  const disks = vmDisks(vm, world);
  if (!Array.isArray(disks)) return disks;
  if (!isReachable(host)) return wait(`host ${host.id} is down: waiting for it to return`);
  const goal = `${power}:${disks.map((d) => d.volumeId).join(',')}`;
  return send(
    vm,
    host.id,
    vmEnsure(vm, disks, power),
    goal,
    ctx,
    power === 'running' ? 'starting' : 'stopping',
  );
}

// ---------------------------------------------------------------------------------------------
// Volumes.

/** The ZFS origin a volume is created from: the image's base snapshot, a snapshot, or null. */
function volumeOrigin(v: VolumeRow, world: World): string | null | undefined {
  if (v.imageId !== null) return imageBaseSnapshot(v.imageId);
  if (v.sourceSnapshotId !== null) {
    const s = world.snapshot(v.sourceSnapshotId);
    return s === undefined ? undefined : snapshotDatasetName(s.volumeId, s.id);
  }
  return null;
}

function planVolume(v: VolumeRow, ctx: PlanContext): Step {
  const { world } = ctx;
  const node = v.storageNodeId === null ? undefined : world.host(v.storageNodeId);

  if (v.desired === 'deleted') {
    if (v.virtualMachineId !== null) {
      const vm = world.vm(v.virtualMachineId);
      if (vm === undefined) return NONE;
      if (!isRemoved(vm)) return wait(`waiting for VM ${vm.id} to release the volume`);
    }
    const snapshots = world.snapshotsOf(v.id).filter((s) => !isRemoved(s));
    if (snapshots.length > 0)
      return wait(`waiting for snapshots to be deleted: ${snapshots.map((s) => s.id).join(', ')}`);
    const o = v.observed;
    if (v.storageNodeId === null || (node !== undefined && isRemoved(node)))
      return finish({ type: 'volume.removed', data: {} });
    if (o !== null && o.storageNodeId === v.storageNodeId && !o.present)
      return finish({ type: 'volume.removed', data: {} });
    if (node === undefined) return NONE;
    return sendToNode(
      v,
      node,
      { type: 'volume.ensure', volumeId: v.id, present: false, sizeBytes: 0, origin: null },
      'absent',
      ctx,
      'deleting the volume',
    );
  }

  // Cascades from the VM: a removed VM takes its root volume with it and lets go of the others.
  if (v.virtualMachineId !== null) {
    const vm = world.vm(v.virtualMachineId);
    if (vm !== undefined && isRemoved(vm))
      return finish(
        v.root
          ? { type: 'volume.delete-requested', data: {} }
          : { type: 'volume.detached', data: { virtualMachineId: vm.id } },
      );
  }

  if (v.storageNodeId === null) {
    if (v.sourceSnapshotId !== null) {
      // A clone lives where its snapshot lives.
      const s = world.snapshot(v.sourceSnapshotId);
      const at =
        s?.storageNodeId === null || s === undefined ? undefined : world.host(s.storageNodeId);
      if (at === undefined) return wait(`waiting for snapshot ${v.sourceSnapshotId} to be placed`);
      return { kind: 'place', hostId: at.id, hostRev: at.rev };
    }
    const chosen = chooseStorageNode(v.sizeGb, world);
    if (chosen === null) return retry(v, `no storage node has ${v.sizeGb} GB free`, ctx);
    return { kind: 'place', hostId: chosen.id, hostRev: chosen.rev };
  }
  if (node === undefined) return NONE;

  const ready = volumeObservedReady(v);
  if (v.state === 'restoring' && v.restoreSnapshotId !== null) {
    return sendToNode(
      v,
      node,
      {
        type: 'volume.restore',
        volumeId: v.id,
        snapshotId: v.restoreSnapshotId,
        snapshot: snapshotDatasetName(v.id, v.restoreSnapshotId),
      },
      `restore:${v.restoreSnapshotId}`,
      ctx,
      'restoring',
    );
  }
  if (ready && (v.state === 'available' || v.state === 'attached')) return NONE;
  const origin = volumeOrigin(v, world);
  if (origin === undefined) return wait(`waiting for snapshot ${v.sourceSnapshotId ?? '?'}`);
  const sizeBytes = v.sizeGb * BYTES_PER_GB;
  return sendToNode(
    v,
    node,
    { type: 'volume.ensure', volumeId: v.id, present: true, sizeBytes, origin },
    `present:${sizeBytes}`,
    ctx,
    v.state === 'growing' ? 'growing' : 'creating the volume',
  );
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

/** Takes (`present`) or destroys the snapshot on its node. */
function ensureSnapshot(s: SnapshotRow, node: HostRow, present: boolean, ctx: PlanContext): Step {
  return sendToNode(
    s,
    node,
    { type: 'snapshot.ensure', snapshotId: s.id, volumeId: s.volumeId, present },
    present ? 'present' : 'absent',
    ctx,
    present ? 'taking the snapshot' : 'deleting the snapshot',
  );
}

function planSnapshot(s: SnapshotRow, ctx: PlanContext): Step {
  const { world } = ctx;
  const volume = world.volume(s.volumeId);
  const node = s.storageNodeId === null ? undefined : world.host(s.storageNodeId);
  const o = s.observed;
  const observedHere =
    o !== null && s.storageNodeId !== null && o.storageNodeId === s.storageNodeId;

  if (s.desired === 'deleted') {
    const clones = world.clonesOf(s.id).filter((v) => !isRemoved(v));
    if (clones.length > 0)
      return wait(`volumes cloned from it must go first: ${clones.map((v) => v.id).join(', ')}`);
    if (s.storageNodeId === null || (node !== undefined && isRemoved(node)))
      return finish({ type: 'snapshot.removed', data: {} });
    if (observedHere && !o.present) return finish({ type: 'snapshot.removed', data: {} });
    if (node === undefined) return NONE;
    return ensureSnapshot(s, node, false, ctx);
  }

  // A snapshot goes with its volume.
  if (volume !== undefined && (isRemoved(volume) || volume.desired === 'deleted'))
    return finish({ type: 'snapshot.delete-requested', data: {} });
  if (s.storageNodeId === null) {
    if (volume?.storageNodeId !== null && volume?.storageNodeId !== undefined)
      return finish({ type: 'snapshot.placed', data: { storageNodeId: volume.storageNodeId } });
    return wait(`waiting for volume ${s.volumeId} to be placed`);
  }
  if (s.state === 'available' && observedHere && o.present) return NONE;
  if (node === undefined || volume === undefined) return NONE;
  if (!volumeObservedReady(volume)) return wait(`waiting for volume ${s.volumeId}`);
  return ensureSnapshot(s, node, true, ctx);
}

// ---------------------------------------------------------------------------------------------
// From a step to a write.

/** What the main loop writes and sends for a step. */
export interface StepWrite {
  /** Appends for one atomic batch (fenced with the resource's token by the caller). */
  readonly appends: readonly StreamAppend[];
  /** The command to publish on `CHANNELS.agent(hostId)` after the write, or null. */
  readonly command: AgentCommand | null;
  readonly hostId: string | null;
}

/** Stamps for {@link stepWrite}. */
export interface StepStamp {
  readonly nowMs: number;
  /** A fresh id for a command (only used by `send`). */
  readonly commandId: string;
  /** The fencing token of the lock on the row's resource. */
  readonly token: number;
  readonly policy: RetryPolicy;
  /** `mainloop` or `mainloop:<instance>`. */
  readonly actor: string;
}

function prefixOf(row: ReconciledRow): 'vm' | 'volume' | 'snapshot' {
  return row.type === 'virtualMachine' ? 'vm' : row.type;
}

/**
 * The events (and command) for a step. `none` and a `wait` whose message is already shown write
 * nothing. A placement also appends `host.placement-recorded` to the host's stream at the version
 * the plan saw, which serialises placements per host.
 */
export function stepWrite(row: ReconciledRow, step: Step, stamp: StepStamp): StepWrite {
  const meta: EventMeta = { atMs: stamp.nowMs, fencingToken: stamp.token, actor: stamp.actor };
  const p = prefixOf(row);
  const own = (...events: NewEvent[]): StreamAppend => ({
    stream: row.id,
    expectedVersion: row.rev,
    events,
  });
  const nothing: StepWrite = { appends: [], command: null, hostId: null };
  switch (step.kind) {
    case 'none':
      return nothing;
    case 'wait':
      if (step.message === null || step.message === row.transitioningMessage) return nothing;
      return {
        appends: [own(newEvent(`${p}.waiting`, { message: step.message }, meta))],
        command: null,
        hostId: null,
      };
    case 'place': {
      const placed =
        row.type === 'virtualMachine'
          ? newEvent('vm.placed', { hostId: step.hostId }, meta)
          : row.type === 'volume'
            ? newEvent('volume.placed', { storageNodeId: step.hostId }, meta)
            : newEvent('snapshot.placed', { storageNodeId: step.hostId }, meta);
      return {
        appends: [
          own(placed),
          {
            stream: step.hostId,
            expectedVersion: step.hostRev,
            events: [newEvent('host.placement-recorded', { resourceId: row.id }, meta)],
          },
        ],
        command: null,
        hostId: null,
      };
    }
    case 'send': {
      const attempt = row.attempts + 1;
      const nextAttemptAtMs = stamp.nowMs + retryDelayMs(stamp.policy, attempt);
      const command = {
        ...step.command,
        commandId: stamp.commandId,
        token: stamp.token,
      } as AgentCommand;
      const sent = newEvent(
        `${p}.command-sent`,
        {
          commandId: stamp.commandId,
          command: command.type,
          hostId: step.hostId,
          attempt,
          nextAttemptAtMs,
          token: stamp.token,
          goal: step.goal,
        },
        meta,
      );
      return { appends: [own(sent)], command, hostId: step.hostId };
    }
    case 'retry': {
      const attempt = row.attempts + 1;
      const nextAttemptAtMs = stamp.nowMs + retryDelayMs(stamp.policy, attempt);
      return {
        appends: [
          own(
            newEvent(
              `${p}.attempt-failed`,
              { reason: step.reason, attempt, nextAttemptAtMs },
              meta,
            ),
          ),
        ],
        command: null,
        hostId: null,
      };
    }
    case 'fail':
      return {
        appends: [own(newEvent(`${p}.failed`, { reason: step.reason }, meta))],
        command: null,
        hostId: null,
      };
    case 'finish':
      return {
        appends: [own(newEvent(step.event.type, step.event.data as never, meta))],
        command: null,
        hostId: null,
      };
    default:
      return assertNever(step, 'step');
  }
}

/** Ids of rows whose plan may change when `row` changes (dependents and dependencies). */
export function relatedIds(
  row: { readonly type: string; readonly id: string },
  world: World,
): string[] {
  const ids: string[] = [];
  switch (row.type) {
    case 'virtualMachine': {
      const vm = world.vm(row.id);
      if (vm !== undefined) ids.push(...vmDiskVolumeIds(vm));
      break;
    }
    case 'volume': {
      const v = world.volume(row.id);
      if (v !== undefined && v.virtualMachineId !== null) ids.push(v.virtualMachineId);
      if (v !== undefined && v.sourceSnapshotId !== null) ids.push(v.sourceSnapshotId);
      ids.push(...world.snapshotsOf(row.id).map((s) => s.id));
      break;
    }
    case 'snapshot': {
      const s = world.snapshot(row.id);
      if (s !== undefined) ids.push(s.volumeId);
      ids.push(...world.clonesOf(row.id).map((v) => v.id));
      break;
    }
    case 'host':
      ids.push(
        ...world.vmsOn(row.id).map((v) => v.id),
        ...world.volumesOn(row.id).map((v) => v.id),
      );
      break;
    default:
      break;
  }
  return ids;
}
