/** Decisions about hosts (admin): register, maintenance, activate, remove. */
import { ID_PREFIX, isRemoved } from '../resources.ts';
import type { HostKind, HostRow, SnapshotRow, VmRow, VolumeRow } from '../resources.ts';
import {
  appendTo,
  createResource,
  fail,
  ok,
  requireAction,
  requireUniqueName,
  someIds,
  userAction,
} from './kit.ts';
import type { DecideContext, Decision } from './kit.ts';

/** Input of {@link decideCreateHost}. */
export interface CreateHostInput {
  readonly name: string;
  readonly kind: HostKind;
  /** Compute hosts: required. */
  readonly vcpus?: number;
  readonly memoryMb?: number;
  /** Storage nodes: required, GiB. */
  readonly poolSizeGb?: number;
}

/** POST /v1/hosts. The host is `registering` until its agent's first inventory. */
export function decideCreateHost(
  input: CreateHostInput,
  existing: readonly HostRow[],
  ctx: DecideContext,
): Decision {
  const refused = requireUniqueName(existing, input.name, 'a host');
  if (refused !== null) return refused;
  if (input.kind === 'compute') {
    if (input.vcpus === undefined)
      return fail('MissingRequired', 'a compute host needs vcpus', 'vcpus');
    if (input.memoryMb === undefined)
      return fail('MissingRequired', 'a compute host needs memoryMb', 'memoryMb');
  } else if (input.poolSizeGb === undefined) {
    return fail('MissingRequired', 'a storage node needs poolSizeGb', 'poolSizeGb');
  }
  const compute = input.kind === 'compute';
  const created = {
    name: input.name,
    kind: input.kind,
    vcpus: compute ? (input.vcpus ?? null) : null,
    memoryMb: compute ? (input.memoryMb ?? null) : null,
    poolSizeGb: compute ? null : (input.poolSizeGb ?? null),
  };
  return createResource(ID_PREFIX.host, 'host.created', created, ctx);
}

/** A decision on a host that needs nothing but its machine's consent. */
type HostAction = (host: HostRow, ctx: DecideContext) => Decision;

/** POST /v1/hosts/{id}?action=maintenance: evacuate; nothing new is placed there. */
export const decideHostMaintenance: HostAction = userAction(
  'host',
  'maintenance',
  'host.maintenance-requested',
);

/** POST /v1/hosts/{id}?action=activate: leave maintenance. */
export const decideHostActivate: HostAction = userAction(
  'host',
  'activate',
  'host.activate-requested',
);

/**
 * POST /v1/hosts/{id}?action=remove: only when empty. `vms` and `volumes` are every VM and
 * volume row (or at least those placed on this host); `snapshots` likewise.
 */
export function decideHostRemove(
  host: HostRow,
  placed: {
    readonly vms: readonly VmRow[];
    readonly volumes: readonly VolumeRow[];
    readonly snapshots?: readonly SnapshotRow[];
  },
  ctx: DecideContext,
): Decision {
  const refused = requireAction('host', host.id, host.state, 'remove');
  if (refused !== null) return refused;
  const users = [
    ...placed.vms.filter((v) => !isRemoved(v) && v.hostId === host.id).map((v) => v.id),
    ...placed.volumes.filter((v) => !isRemoved(v) && v.storageNodeId === host.id).map((v) => v.id),
    ...(placed.snapshots ?? [])
      .filter((s) => !isRemoved(s) && s.storageNodeId === host.id)
      .map((s) => s.id),
  ].sort();
  if (users.length > 0)
    return fail('InvalidState', `host ${host.id} is not empty: ${someIds(users)}`);
  return ok(host.id, [appendTo(host, 'host.removed', {}, ctx)]);
}
