/**
 * Decide: one pure function per API operation. Each takes the current row(s), input the api has
 * already validated against the schema (types, ranges, required fields), and `{ nowMs, ids }`, and
 * returns either the appends to commit in one atomic batch or a GDAPI error.
 *
 * CONTRACT (api): the api reads the rows, calls the function, appends `appends` as one
 * `AppendBatch` (no fence: the api holds no lock; the expected versions make it safe), publishes a
 * `changed` notice for each appended stream after the commit, and answers with `id`. A
 * ConcurrencyError means a row changed in between: re-read and decide again (or 409). Decide
 * re-checks every rule that spans resources (state, ownership, limits, dependents); the api checks
 * permissions (403) and existence (404) before calling. An ok decision with no appends (a rename
 * to the current name) means there is nothing to change: the api writes nothing. Errors are data,
 * never thrown.
 */
import { assert } from '../lib/assert.ts';
import { sha256Hex } from '../lib/hash.ts';
import { newEvent, type EventDataMap, type EventType } from './events.ts';
import { validateField } from './gdapi-schema.ts';
import { accepts, availableActions, USER_EVENTS } from './lifecycle.ts';
import {
  accessKeyStreamId,
  findImage,
  ID_PREFIX,
  isRemoved,
  LIMITS,
  type AccountKind,
  type AccountRow,
  type ApiKeyRow,
  type HostKind,
  type HostRow,
  type MachineType,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from './resources.ts';
import type { EventMeta, IdSource, NewEvent, StreamAppend } from './stream.ts';

/** GDAPI error codes a decision may return (422 unless noted). */
export type DecideErrorCode =
  | 'InvalidState'
  /** 404 in GDAPI: the action is not valid in the resource's current state. */
  | 'ActionNotAvailable'
  | 'InvalidReference'
  | 'MaxLimitExceeded'
  | 'MinLimitExceeded'
  | 'NotUnique'
  | 'MissingRequired'
  | 'InvalidOption'
  /** Field rules (a new name): as the api's schema validation reports them. */
  | 'InvalidFormat'
  | 'MinLengthExceeded'
  | 'MaxLengthExceeded'
  | 'InvalidCharacters'
  /** 403. */
  | 'PermissionDenied';

export interface DecideError {
  readonly code: DecideErrorCode;
  readonly message: string;
  readonly fieldName?: string;
}

/** The outcome of a decision. `id`: the resource created or acted on (for `Location`). */
export type Decision =
  | { readonly ok: true; readonly id: string; readonly appends: readonly StreamAppend[] }
  | { readonly ok: false; readonly error: DecideError };

/** What every decision needs from the world. */
export interface DecideContext {
  /** Time of the request, ms since the epoch: every event's `meta.atMs`. */
  readonly nowMs: number;
  /** Ids for new resources (the Ids port). */
  readonly ids: IdSource;
  /** `api:<accountId>`. */
  readonly actor?: string;
  /** The request id, shared by every event of the operation. */
  readonly correlationId?: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function metaOf(ctx: DecideContext): EventMeta {
  return {
    atMs: ctx.nowMs,
    ...(ctx.actor === undefined ? {} : { actor: ctx.actor }),
    ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
  };
}

function ev<T extends EventType>(type: T, data: EventDataMap[T], ctx: DecideContext): NewEvent {
  return newEvent(type, data, metaOf(ctx));
}

function fail(code: DecideErrorCode, message: string, fieldName?: string): Decision {
  return {
    ok: false,
    error: fieldName === undefined ? { code, message } : { code, message, fieldName },
  };
}

function ok(id: string, appends: readonly StreamAppend[]): Decision {
  return { ok: true, id, appends };
}

/** ActionNotAvailable unless the machine of `type` accepts the user `action` in `state`. */
function requireAction(
  type: MachineType,
  id: string,
  state: string,
  action: string,
): Decision | null {
  const event = USER_EVENTS[type][action];
  if (event !== undefined && accepts(type, state, { type: event } as never)) return null;
  const valid = availableActions(type, state);
  return fail(
    'ActionNotAvailable',
    `${action} is not available for ${type} ${id} in state ${state}` +
      (valid.length > 0 ? ` (available: ${valid.join(', ')})` : ''),
  );
}

function requireSameAccount(
  a: { readonly accountId: string; readonly id: string },
  b: { readonly accountId: string; readonly id: string },
  fieldName: string,
): Decision | null {
  return a.accountId === b.accountId
    ? null
    : fail('InvalidReference', `${b.id} belongs to another account`, fieldName);
}

/**
 * Live volumes cloned from a snapshot of any of `volumeIds` (or from one of `snapshotIds`): the
 * dependents that block deleting those snapshots, as ZFS refuses to destroy a snapshot with
 * clones. The api passes every snapshot and volume of the account.
 */
export function dependentClones(
  of: { readonly volumeIds?: readonly string[]; readonly snapshotIds?: readonly string[] },
  snapshots: readonly SnapshotRow[],
  volumes: readonly VolumeRow[],
): VolumeRow[] {
  const snapIds = new Set(of.snapshotIds ?? []);
  for (const s of snapshots)
    if ((of.volumeIds ?? []).includes(s.volumeId) && !isRemoved(s)) snapIds.add(s.id);
  return volumes
    .filter((v) => !isRemoved(v) && v.sourceSnapshotId !== null && snapIds.has(v.sourceSnapshotId))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

function describeVolumes(volumes: readonly VolumeRow[]): string {
  return volumes.map((v) => `${v.name} (${v.id})`).join(', ');
}

/** Sum of the sizes of a VM's extra (non-root) volumes. */
function extraGb(volumes: readonly VolumeRow[]): number {
  return volumes.filter((v) => !v.root && !isRemoved(v)).reduce((s, v) => s + v.sizeGb, 0);
}

// ---------------------------------------------------------------------------------------------
// Accounts and api keys.

export interface CreateAccountInput {
  readonly name: string;
  readonly kind: AccountKind;
}

/** POST /v1/accounts (admin). Names are unique among live accounts. */
export function decideCreateAccount(
  input: CreateAccountInput,
  existing: readonly AccountRow[],
  ctx: DecideContext,
): Decision {
  if (existing.some((a) => !isRemoved(a) && a.name === input.name))
    return fail('NotUnique', `an account named ${input.name} exists`, 'name');
  const id = ctx.ids.next(ID_PREFIX.account);
  return ok(id, [
    {
      stream: id,
      expectedVersion: 0,
      events: [ev('account.created', { name: input.name, kind: input.kind }, ctx)],
    },
  ]);
}

export interface CreateApiKeyInput {
  readonly accountId: string;
  readonly name: string;
  /** The access key (public), generated by the api. */
  readonly publicValue: string;
  /** The secret, generated by the api and shown once; only its salted hash is stored. */
  readonly secret: string;
  readonly salt: string;
}

/** The stored hash of an api key secret: sha256 hex of `salt + secret`. */
export function hashSecret(salt: string, secret: string): string {
  return sha256Hex(salt + secret);
}

/**
 * POST /v1/apikeys. Public values are unique: checked against `existing`, and atomically by the
 * access key's lookup stream (see accessKeyStreamId), claimed at version 0 in the same batch, so
 * two concurrent creates with one access key cannot both commit.
 */
export function decideCreateApiKey(
  input: CreateApiKeyInput,
  account: AccountRow,
  existing: readonly ApiKeyRow[],
  ctx: DecideContext,
): Decision {
  if (isRemoved(account))
    return fail('InvalidReference', `account ${account.id} is removed`, 'accountId');
  if (existing.some((k) => k.publicValue === input.publicValue))
    return fail('NotUnique', 'an api key with this public value exists', 'publicValue');
  const id = ctx.ids.next(ID_PREFIX.apiKey);
  return ok(id, [
    {
      stream: id,
      expectedVersion: 0,
      events: [
        ev(
          'apikey.created',
          {
            accountId: account.id,
            name: input.name,
            publicValue: input.publicValue,
            secretHash: hashSecret(input.salt, input.secret),
            salt: input.salt,
          },
          ctx,
        ),
      ],
    },
    {
      stream: accessKeyStreamId(input.publicValue),
      expectedVersion: 0,
      events: [ev('accesskey.claimed', { keyId: id }, ctx)],
    },
  ]);
}

/** DELETE /v1/apikeys/{id}. */
export function decideRevokeApiKey(key: ApiKeyRow, ctx: DecideContext): Decision {
  if (isRemoved(key)) return fail('InvalidState', `api key ${key.id} is already revoked`);
  return ok(key.id, [
    { stream: key.id, expectedVersion: key.rev, events: [ev('apikey.revoked', {}, ctx)] },
  ]);
}

/**
 * DELETE /v1/accounts/{id} (admin): only when the account owns no live VM, volume or snapshot
 * (deleting them is the owner's decision and takes the control plane's work), and never the last
 * live admin account (nobody could manage the cloud any more). Its live keys are revoked in the
 * same batch; the row stays as a tombstone, so the account's history and usage remain readable.
 * `related`: every account, and the api keys, VMs, volumes and snapshots of this account (or all).
 *
 * A resource created by a request that authenticated just before the deletion committed can still
 * land afterwards (creates do not write the account's stream); it stays visible to admins, who can
 * delete it. Later requests with the account's keys are refused (401).
 */
export function decideDeleteAccount(
  account: AccountRow,
  related: {
    readonly accounts: readonly AccountRow[];
    readonly apiKeys: readonly ApiKeyRow[];
    readonly vms: readonly VmRow[];
    readonly volumes: readonly VolumeRow[];
    readonly snapshots: readonly SnapshotRow[];
  },
  ctx: DecideContext,
): Decision {
  if (isRemoved(account)) return fail('InvalidState', `account ${account.id} is already removed`);
  const owned = [...related.vms, ...related.volumes, ...related.snapshots]
    .filter((r) => r.accountId === account.id && !isRemoved(r))
    .map((r) => r.id)
    .sort();
  if (owned.length > 0)
    return fail(
      'InvalidState',
      `account ${account.id} still owns ${owned.length} live resource(s), delete them first: ` +
        `${owned.slice(0, 10).join(', ')}${owned.length > 10 ? ', …' : ''}`,
    );
  if (
    account.kind === 'admin' &&
    !related.accounts.some((a) => a.id !== account.id && a.kind === 'admin' && !isRemoved(a))
  )
    return fail('InvalidState', `account ${account.id} is the last admin account`);
  const keys = related.apiKeys
    .filter((k) => k.accountId === account.id && !isRemoved(k))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return ok(account.id, [
    {
      stream: account.id,
      expectedVersion: account.rev,
      events: [ev('account.removed', {}, ctx)],
    },
    ...keys.map((k) => ({
      stream: k.id,
      expectedVersion: k.rev,
      events: [ev('apikey.revoked', {}, ctx)],
    })),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Renames (PUT).

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
  return ok(row.id, [
    {
      stream: row.id,
      expectedVersion: row.rev,
      events: [ev(RENAMED[row.type], { name }, ctx)],
    },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Hosts (admin).

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
  if (existing.some((h) => !isRemoved(h) && h.name === input.name))
    return fail('NotUnique', `a host named ${input.name} exists`, 'name');
  if (input.kind === 'compute') {
    if (input.vcpus === undefined)
      return fail('MissingRequired', 'a compute host needs vcpus', 'vcpus');
    if (input.memoryMb === undefined)
      return fail('MissingRequired', 'a compute host needs memoryMb', 'memoryMb');
  } else if (input.poolSizeGb === undefined) {
    return fail('MissingRequired', 'a storage node needs poolSizeGb', 'poolSizeGb');
  }
  const id = ctx.ids.next(ID_PREFIX.host);
  const compute = input.kind === 'compute';
  return ok(id, [
    {
      stream: id,
      expectedVersion: 0,
      events: [
        ev(
          'host.created',
          {
            name: input.name,
            kind: input.kind,
            vcpus: compute ? (input.vcpus ?? null) : null,
            memoryMb: compute ? (input.memoryMb ?? null) : null,
            poolSizeGb: compute ? null : (input.poolSizeGb ?? null),
          },
          ctx,
        ),
      ],
    },
  ]);
}

/** POST /v1/hosts/{id}?action=maintenance: evacuate; nothing new is placed there. */
export function decideHostMaintenance(host: HostRow, ctx: DecideContext): Decision {
  return (
    requireAction('host', host.id, host.state, 'maintenance') ??
    ok(host.id, [
      {
        stream: host.id,
        expectedVersion: host.rev,
        events: [ev('host.maintenance-requested', {}, ctx)],
      },
    ])
  );
}

/** POST /v1/hosts/{id}?action=activate: leave maintenance. */
export function decideHostActivate(host: HostRow, ctx: DecideContext): Decision {
  return (
    requireAction('host', host.id, host.state, 'activate') ??
    ok(host.id, [
      {
        stream: host.id,
        expectedVersion: host.rev,
        events: [ev('host.activate-requested', {}, ctx)],
      },
    ])
  );
}

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
    return fail(
      'InvalidState',
      `host ${host.id} is not empty: ${users.slice(0, 10).join(', ')}${users.length > 10 ? ', …' : ''}`,
    );
  return ok(host.id, [
    { stream: host.id, expectedVersion: host.rev, events: [ev('host.removed', {}, ctx)] },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Virtual machines.

export interface CreateVmInput {
  readonly accountId: string;
  readonly name: string;
  readonly imageId: string;
  /** 1..8. */
  readonly vcpus: number;
  /** 256..16384. */
  readonly memoryMb: number;
  /** 10..100, default 40. */
  readonly rootDiskGb?: number;
  /** Extra volumes, created attached: total at most 1229 GiB. */
  readonly volumes?: readonly { readonly name?: string; readonly sizeGb: number }[];
  /** Start once created (default true). */
  readonly start?: boolean;
}

/**
 * POST /v1/virtualmachines: the VM, its root volume (a clone of the image) and its extra volumes,
 * in one atomic batch. The main loop places them and brings the VM up.
 */
export function decideCreateVm(input: CreateVmInput, ctx: DecideContext): Decision {
  const image = findImage(input.imageId);
  if (image === null) return fail('InvalidReference', `no image ${input.imageId}`, 'imageId');
  const rootDiskGb = input.rootDiskGb ?? LIMITS.rootDiskGbDefault;
  if (rootDiskGb < image.sizeGb)
    return fail(
      'MinLimitExceeded',
      `${image.name} needs a root disk of at least ${image.sizeGb} GB`,
      'rootDiskGb',
    );
  if (rootDiskGb > LIMITS.rootDiskGbMax)
    return fail(
      'MaxLimitExceeded',
      `root disk is at most ${LIMITS.rootDiskGbMax} GB`,
      'rootDiskGb',
    );
  if (input.vcpus < LIMITS.vcpusMin || input.vcpus > LIMITS.vcpusMax)
    return fail(
      input.vcpus < LIMITS.vcpusMin ? 'MinLimitExceeded' : 'MaxLimitExceeded',
      `vcpus must be in ${LIMITS.vcpusMin}..${LIMITS.vcpusMax}`,
      'vcpus',
    );
  if (input.memoryMb < LIMITS.memoryMbMin || input.memoryMb > LIMITS.memoryMbMax)
    return fail(
      input.memoryMb < LIMITS.memoryMbMin ? 'MinLimitExceeded' : 'MaxLimitExceeded',
      `memoryMb must be in ${LIMITS.memoryMbMin}..${LIMITS.memoryMbMax}`,
      'memoryMb',
    );
  const extras = input.volumes ?? [];
  if (extras.length > LIMITS.extraVolumesMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `at most ${LIMITS.extraVolumesMaxPerVm} extra volumes per VM`,
      'volumes',
    );
  for (const v of extras)
    if (v.sizeGb < LIMITS.volumeSizeGbMin || v.sizeGb > LIMITS.volumeSizeGbMax)
      return fail(
        v.sizeGb < LIMITS.volumeSizeGbMin ? 'MinLimitExceeded' : 'MaxLimitExceeded',
        `volume size must be in ${LIMITS.volumeSizeGbMin}..${LIMITS.volumeSizeGbMax} GB`,
        'volumes',
      );
  const total = extras.reduce((s, v) => s + v.sizeGb, 0);
  if (total > LIMITS.extraStorageGbMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `extra storage per VM is at most ${LIMITS.extraStorageGbMaxPerVm} GB (asked ${total})`,
      'volumes',
    );

  const vmId = ctx.ids.next(ID_PREFIX.virtualMachine);
  const rootVolumeId = ctx.ids.next(ID_PREFIX.volume);
  const extraIds = extras.map(() => ctx.ids.next(ID_PREFIX.volume));
  const appends: StreamAppend[] = [
    {
      stream: vmId,
      expectedVersion: 0,
      events: [
        ev(
          'vm.created',
          {
            accountId: input.accountId,
            name: input.name,
            imageId: image.id,
            vcpus: input.vcpus,
            memoryMb: input.memoryMb,
            rootDiskGb,
            rootVolumeId,
            volumeIds: extraIds,
            desired: input.start === false ? 'stopped' : 'running',
          },
          ctx,
        ),
      ],
    },
    {
      stream: rootVolumeId,
      expectedVersion: 0,
      events: [
        ev(
          'volume.created',
          {
            accountId: input.accountId,
            name: `${input.name}-root`,
            sizeGb: rootDiskGb,
            root: true,
            imageId: image.id,
            sourceSnapshotId: null,
            virtualMachineId: vmId,
            storageNodeId: null,
          },
          ctx,
        ),
      ],
    },
    ...extras.map((v, i) => ({
      stream: extraIds[i] as string,
      expectedVersion: 0,
      events: [
        ev(
          'volume.created',
          {
            accountId: input.accountId,
            name: v.name ?? `${input.name}-vol${i + 1}`,
            sizeGb: v.sizeGb,
            root: false,
            imageId: null,
            sourceSnapshotId: null,
            virtualMachineId: vmId,
            storageNodeId: null,
          },
          ctx,
        ),
      ],
    })),
  ];
  return ok(vmId, appends);
}

function vmAction(
  vm: VmRow,
  action: 'start' | 'stop' | 'restart',
  type: 'vm.start-requested' | 'vm.stop-requested' | 'vm.restart-requested',
  ctx: DecideContext,
): Decision {
  return (
    requireAction('virtualMachine', vm.id, vm.state, action) ??
    ok(vm.id, [{ stream: vm.id, expectedVersion: vm.rev, events: [ev(type, {}, ctx)] }])
  );
}

/** POST /v1/virtualmachines/{id}?action=start. */
export function decideStartVm(vm: VmRow, ctx: DecideContext): Decision {
  return vmAction(vm, 'start', 'vm.start-requested', ctx);
}

/** POST /v1/virtualmachines/{id}?action=stop. */
export function decideStopVm(vm: VmRow, ctx: DecideContext): Decision {
  return vmAction(vm, 'stop', 'vm.stop-requested', ctx);
}

/** POST /v1/virtualmachines/{id}?action=restart (stop, then start). */
export function decideRestartVm(vm: VmRow, ctx: DecideContext): Decision {
  return vmAction(vm, 'restart', 'vm.restart-requested', ctx);
}

/**
 * DELETE /v1/virtualmachines/{id}. The main loop cascades: once the domain is gone it deletes the
 * root volume (and the root volume's snapshots) and detaches the extra volumes (they are kept).
 * Refused while a live volume was cloned from a snapshot of the root volume, because that
 * snapshot could never be destroyed. `snapshots`/`volumes`: the account's rows.
 */
export function decideDeleteVm(
  vm: VmRow,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly volumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  const refused = requireAction('virtualMachine', vm.id, vm.state, 'delete');
  if (refused !== null) return refused;
  const clones = dependentClones(
    { volumeIds: [vm.rootVolumeId] },
    related.snapshots,
    related.volumes,
  );
  if (clones.length > 0)
    return fail(
      'InvalidState',
      `volumes cloned from snapshots of the root volume depend on it: ${describeVolumes(clones)}`,
    );
  return ok(vm.id, [
    { stream: vm.id, expectedVersion: vm.rev, events: [ev('vm.delete-requested', {}, ctx)] },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Volumes.

export interface CreateVolumeInput {
  readonly accountId: string;
  readonly name: string;
  /** Required without a source snapshot; with one, at least the snapshot's size (default it). */
  readonly sizeGb?: number;
  readonly sourceSnapshotId?: string;
}

/**
 * POST /v1/volumes: an empty volume, or a clone of a snapshot (`source`, on its node; the batch
 * also appends `snapshot.clone-registered` at the snapshot's version).
 */
export function decideCreateVolume(
  input: CreateVolumeInput,
  source: SnapshotRow | null,
  ctx: DecideContext,
): Decision {
  let sizeGb = input.sizeGb;
  let storageNodeId: string | null = null;
  if (input.sourceSnapshotId !== undefined) {
    if (source === null || source.id !== input.sourceSnapshotId)
      return fail('InvalidReference', `no snapshot ${input.sourceSnapshotId}`, 'sourceSnapshotId');
    if (source.accountId !== input.accountId)
      return fail(
        'InvalidReference',
        `${source.id} belongs to another account`,
        'sourceSnapshotId',
      );
    if (source.state !== 'available')
      return fail(
        'InvalidState',
        `snapshot ${source.id} is ${source.state}, not available`,
        'sourceSnapshotId',
      );
    sizeGb ??= source.sizeGb;
    if (sizeGb < source.sizeGb)
      return fail(
        'MinLimitExceeded',
        `a volume from snapshot ${source.id} needs at least ${source.sizeGb} GB`,
        'sizeGb',
      );
    storageNodeId = source.storageNodeId;
  }
  if (sizeGb === undefined) return fail('MissingRequired', 'sizeGb is required', 'sizeGb');
  if (sizeGb < LIMITS.volumeSizeGbMin)
    return fail(
      'MinLimitExceeded',
      `volume size is at least ${LIMITS.volumeSizeGbMin} GB`,
      'sizeGb',
    );
  if (sizeGb > LIMITS.volumeSizeGbMax)
    return fail(
      'MaxLimitExceeded',
      `volume size is at most ${LIMITS.volumeSizeGbMax} GB`,
      'sizeGb',
    );
  const id = ctx.ids.next(ID_PREFIX.volume);
  const appends: StreamAppend[] = [
    {
      stream: id,
      expectedVersion: 0,
      events: [
        ev(
          'volume.created',
          {
            accountId: input.accountId,
            name: input.name,
            sizeGb,
            root: false,
            imageId: null,
            sourceSnapshotId: source?.id ?? null,
            virtualMachineId: null,
            storageNodeId,
          },
          ctx,
        ),
      ],
    },
  ];
  // A clone writes its snapshot's stream at the version read: a concurrent delete of the
  // snapshot (which checks for clones on rows that cannot show this one yet) then conflicts.
  if (source !== null)
    appends.push({
      stream: source.id,
      expectedVersion: source.rev,
      events: [ev('snapshot.clone-registered', { volumeId: id }, ctx)],
    });
  return ok(id, appends);
}

/**
 * POST /v1/volumes/{id}?action=attach {virtualMachineId}. The VM must be stopped; its extra
 * storage stays within 1229 GB. `vmVolumes`: the rows of the VM's current extra volumes.
 */
export function decideAttachVolume(
  volume: VolumeRow,
  vm: VmRow,
  vmVolumes: readonly VolumeRow[],
  ctx: DecideContext,
): Decision {
  const refused =
    requireAction('volume', volume.id, volume.state, 'attach') ??
    requireSameAccount(volume, vm, 'virtualMachineId');
  if (refused !== null) return refused;
  if (volume.root) return fail('InvalidState', 'a root volume cannot be attached elsewhere');
  if (vm.state !== 'stopped')
    return fail(
      'InvalidState',
      `VM ${vm.id} must be stopped to attach a volume (it is ${vm.state})`,
      'virtualMachineId',
    );
  const current = vmVolumes.filter((v) => vm.volumeIds.includes(v.id) && v.id !== volume.id);
  if (vm.volumeIds.length + 1 > LIMITS.extraVolumesMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `a VM has at most ${LIMITS.extraVolumesMaxPerVm} extra volumes`,
      'virtualMachineId',
    );
  const total = extraGb(current) + volume.sizeGb;
  if (total > LIMITS.extraStorageGbMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `extra storage per VM is at most ${LIMITS.extraStorageGbMaxPerVm} GB (would be ${total})`,
      'virtualMachineId',
    );
  return ok(volume.id, [
    {
      stream: volume.id,
      expectedVersion: volume.rev,
      events: [ev('volume.attached', { virtualMachineId: vm.id }, ctx)],
    },
    {
      stream: vm.id,
      expectedVersion: vm.rev,
      events: [ev('vm.volume-attached', { volumeId: volume.id }, ctx)],
    },
  ]);
}

/** POST /v1/volumes/{id}?action=detach. The VM must be stopped (or gone); root volumes stay. */
export function decideDetachVolume(
  volume: VolumeRow,
  vm: VmRow | null,
  ctx: DecideContext,
): Decision {
  const refused = requireAction('volume', volume.id, volume.state, 'detach');
  if (refused !== null) return refused;
  if (volume.root) return fail('InvalidState', 'a root volume cannot be detached');
  const vmId = volume.virtualMachineId;
  if (vmId === null) return fail('InvalidState', `volume ${volume.id} is not attached`);
  const appends: StreamAppend[] = [
    {
      stream: volume.id,
      expectedVersion: volume.rev,
      events: [ev('volume.detached', { virtualMachineId: vmId }, ctx)],
    },
  ];
  if (vm !== null && !isRemoved(vm)) {
    if (vm.id !== vmId)
      return fail('InvalidReference', `volume ${volume.id} is not attached to ${vm.id}`);
    if (vm.state !== 'stopped')
      return fail(
        'InvalidState',
        `VM ${vm.id} must be stopped to detach a volume (it is ${vm.state})`,
      );
    appends.push({
      stream: vm.id,
      expectedVersion: vm.rev,
      events: [ev('vm.volume-detached', { volumeId: volume.id }, ctx)],
    });
  }
  return ok(volume.id, appends);
}

/**
 * POST /v1/volumes/{id}?action=grow {sizeGb}: larger only. `vm`/`vmVolumes`: the VM it is attached
 * to and that VM's extra volumes, for the 1229 GB rule (null/[] when detached). Growing an attached
 * extra volume also appends `vm.storage-changed` at the VM's version.
 */
export function decideGrowVolume(
  volume: VolumeRow,
  sizeGb: number,
  attachment: { readonly vm: VmRow | null; readonly vmVolumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  const refused = requireAction('volume', volume.id, volume.state, 'grow');
  if (refused !== null) return refused;
  if (volume.desired === 'deleted')
    return fail('InvalidState', `volume ${volume.id} is being deleted`);
  if (sizeGb <= volume.sizeGb)
    return fail('MinLimitExceeded', `a volume only grows: it has ${volume.sizeGb} GB`, 'sizeGb');
  const max = volume.root ? LIMITS.rootDiskGbMax : LIMITS.volumeSizeGbMax;
  if (sizeGb > max) return fail('MaxLimitExceeded', `size is at most ${max} GB`, 'sizeGb');
  const appends: StreamAppend[] = [
    {
      stream: volume.id,
      expectedVersion: volume.rev,
      events: [ev('volume.grow-requested', { sizeGb }, ctx)],
    },
  ];
  const vm = attachment.vm;
  if (!volume.root && vm !== null) {
    const others = attachment.vmVolumes.filter(
      (v) => vm.volumeIds.includes(v.id) && v.id !== volume.id,
    );
    const total = extraGb(others) + sizeGb;
    if (total > LIMITS.extraStorageGbMaxPerVm)
      return fail(
        'MaxLimitExceeded',
        `extra storage per VM is at most ${LIMITS.extraStorageGbMaxPerVm} GB (would be ${total})`,
        'sizeGb',
      );
    // The rule read the VM's other volumes: write the VM's stream at the version read, so a
    // concurrent grow or attach on the same VM conflicts (and is decided again) instead of
    // passing the same check on the same stale rows.
    appends.push({
      stream: vm.id,
      expectedVersion: vm.rev,
      events: [ev('vm.storage-changed', { volumeId: volume.id, extraGb: total }, ctx)],
    });
  }
  return ok(volume.id, appends);
}

/**
 * POST /v1/snapshots {volumeId, name} or /v1/volumes/{id}?action=snapshot {name}: a new snapshot
 * resource of the volume, on the volume's storage node. Returns the snapshot's id.
 */
export function decideSnapshotVolume(
  volume: VolumeRow,
  input: { readonly name: string },
  ctx: DecideContext,
): Decision {
  const refused = requireAction('volume', volume.id, volume.state, 'snapshot');
  if (refused !== null) return refused;
  const id = ctx.ids.next(ID_PREFIX.snapshot);
  return ok(id, [
    {
      stream: id,
      expectedVersion: 0,
      events: [
        ev(
          'snapshot.created',
          {
            accountId: volume.accountId,
            name: input.name,
            volumeId: volume.id,
            sizeGb: volume.sizeGb,
            storageNodeId: volume.storageNodeId,
          },
          ctx,
        ),
      ],
    },
  ]);
}

/** The most recent live snapshot of a volume (newest `created`, ties by id), or null. */
export function latestSnapshot(
  volumeId: string,
  snapshots: readonly SnapshotRow[],
): SnapshotRow | null {
  let best: SnapshotRow | null = null;
  for (const s of snapshots) {
    if (s.volumeId !== volumeId || isRemoved(s) || s.desired !== 'present') continue;
    if (best === null || s.created > best.created || (s.created === best.created && s.id > best.id))
      best = s;
  }
  return best;
}

/**
 * POST /v1/volumes/{id}?action=restore {snapshotId}: roll back to the volume's most recent
 * snapshot only (ZFS rollback without -r). The VM it is attached to, if any, must be stopped.
 * `snapshots`: every snapshot of the volume.
 */
export function decideRestoreVolume(
  volume: VolumeRow,
  snapshotId: string,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly vm: VmRow | null },
  ctx: DecideContext,
): Decision {
  const refused = requireAction('volume', volume.id, volume.state, 'restore');
  if (refused !== null) return refused;
  if (volume.desired === 'deleted')
    return fail('InvalidState', `volume ${volume.id} is being deleted`);
  const snapshot = related.snapshots.find((s) => s.id === snapshotId);
  if (snapshot === undefined || snapshot.volumeId !== volume.id || isRemoved(snapshot))
    return fail(
      'InvalidReference',
      `${snapshotId} is not a snapshot of ${volume.id}`,
      'snapshotId',
    );
  const latest = latestSnapshot(volume.id, related.snapshots);
  if (latest?.id !== snapshot.id)
    return fail(
      'InvalidState',
      `only the most recent snapshot (${latest?.id ?? 'none'}) can be restored`,
      'snapshotId',
    );
  if (snapshot.state !== 'available')
    return fail('InvalidState', `snapshot ${snapshot.id} is ${snapshot.state}`, 'snapshotId');
  const vm = related.vm;
  if (volume.virtualMachineId !== null && vm !== null && !isRemoved(vm) && vm.state !== 'stopped')
    return fail(
      'InvalidState',
      `VM ${vm.id} must be stopped to restore its volume (it is ${vm.state})`,
    );
  return ok(volume.id, [
    {
      stream: volume.id,
      expectedVersion: volume.rev,
      events: [ev('volume.restore-requested', { snapshotId }, ctx)],
    },
  ]);
}

/**
 * DELETE /v1/volumes/{id}: not a root volume (deleted with its VM), not attached (detach first).
 * Its snapshots are deleted with it by the main loop; refused while a live volume was cloned from
 * one of them. `snapshots`/`volumes`: the account's rows.
 */
export function decideDeleteVolume(
  volume: VolumeRow,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly volumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  if (volume.root) return fail('InvalidState', `root volume ${volume.id} is deleted with its VM`);
  if (volume.virtualMachineId !== null)
    return fail(
      'InvalidState',
      `volume ${volume.id} is attached to ${volume.virtualMachineId}: detach it first`,
    );
  const refused = requireAction('volume', volume.id, volume.state, 'delete');
  if (refused !== null) return refused;
  const clones = dependentClones({ volumeIds: [volume.id] }, related.snapshots, related.volumes);
  if (clones.length > 0)
    return fail(
      'InvalidState',
      `volumes cloned from its snapshots depend on it: ${describeVolumes(clones)}`,
    );
  return ok(volume.id, [
    {
      stream: volume.id,
      expectedVersion: volume.rev,
      events: [ev('volume.delete-requested', {}, ctx)],
    },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

/**
 * DELETE /v1/snapshots/{id}: refused (InvalidState, naming them) while a live volume was cloned
 * from it. `volumes`: the account's volumes.
 */
export function decideDeleteSnapshot(
  snapshot: SnapshotRow,
  volumes: readonly VolumeRow[],
  ctx: DecideContext,
): Decision {
  const refused = requireAction('snapshot', snapshot.id, snapshot.state, 'delete');
  if (refused !== null) return refused;
  const clones = dependentClones({ snapshotIds: [snapshot.id] }, [], volumes);
  if (clones.length > 0)
    return fail(
      'InvalidState',
      `volumes were cloned from this snapshot: ${describeVolumes(clones)}`,
    );
  return ok(snapshot.id, [
    {
      stream: snapshot.id,
      expectedVersion: snapshot.rev,
      events: [ev('snapshot.delete-requested', {}, ctx)],
    },
  ]);
}
