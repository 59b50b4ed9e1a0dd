/**
 * The write operations of the API: create, update (rename), delete and actions. Each reads the rows
 * a rule needs, calls the matching pure decision of src/model/decide.ts, appends the decision's
 * events in ONE batch (so nothing is recorded when anything fails) and then publishes a change
 * notice per written resource stream. A decision with nothing to append (a rename to the current
 * name) writes nothing. A lost race with another writer (ConcurrencyError) is retried from a fresh
 * read when the client named no `rev`; with a `rev` it is the client's 409.
 */
import { CHANNELS } from '../../ports/bus.ts';
import { ConcurrencyError } from '../../ports/event-store.ts';
import {
  decideAttachVolume,
  decideCreateAccount,
  decideCreateApiKey,
  decideCreateHost,
  decideCreateVm,
  decideCreateVolume,
  decideDeleteAccount,
  decideDeleteSnapshot,
  decideDeleteVm,
  decideDeleteVolume,
  decideDetachVolume,
  decideGrowVolume,
  decideHostActivate,
  decideHostMaintenance,
  decideHostRemove,
  decideRename,
  decideRestartVm,
  decideRestoreVolume,
  decideRevokeApiKey,
  decideSnapshotVolume,
  decideStartVm,
  decideStopVm,
  type DecideContext,
  type DecideError,
  type Decision,
  type RenamableRow,
} from '../../model/decide.ts';
import { typeOfId, type JsonObject, type JsonValue } from '../../model/gdapi-schema.ts';
import type {
  AccountKind,
  AccountRow,
  ApiKeyRow,
  HostKind,
  HostRow,
  SnapshotRow,
  VmRow,
  VolumeRow,
} from '../../model/resources.ts';
import type { StreamAppend } from '../../model/stream.ts';
import { newAccessKey, newSalt, newSecretKey } from './auth.ts';
import {
  listAccountRows,
  listAllRows,
  loadReference,
  readRow,
  type RequestContext,
  type Row,
} from './context.ts';
import { fail, type ApiError } from './errors.ts';

/** The outcome of a write: the resource to answer with, and members shown only in this answer. */
export interface WriteResult {
  /** The id of the resource the answer shows (the created one; a snapshot action's snapshot). */
  readonly id: string;
  /** Members shown once (`secretValue` of a new api key). */
  readonly extra: Readonly<Record<string, JsonValue>>;
}

function decideContext(ctx: RequestContext): DecideContext {
  return {
    nowMs: ctx.nowMs,
    ids: ctx.runtime.ids,
    actor: `api:${ctx.caller.accountId}`,
    correlationId: ctx.requestId(),
  };
}

/** The HTTP error of a refused decision. */
function decisionError(error: DecideError, forDelete: boolean): ApiError {
  const options = error.fieldName === undefined ? {} : { fieldName: error.fieldName };
  switch (error.code) {
    case 'ActionNotAvailable':
      // DELETE is a method, not an action: a state that forbids it is an InvalidState.
      return forDelete
        ? fail(422, 'InvalidState', error.message, options)
        : fail(404, 'ActionNotAvailable', error.message, options);
    case 'PermissionDenied':
      return fail(403, 'PermissionDenied', error.message, options);
    default:
      return fail(422, error.code, error.message, options);
  }
}

/**
 * Appends one batch (nothing when it is empty), then publishes a change notice per resource stream
 * (internal streams such as access key lookups get none; a lost notice is only logged).
 */
async function commit(ctx: RequestContext, appends: readonly StreamAppend[]): Promise<void> {
  if (appends.length === 0) return;
  await ctx.store.append({ appends });
  for (const append of appends) {
    const resourceType = typeOfId(append.stream);
    if (resourceType === undefined) continue;
    try {
      await ctx.bus.publish(CHANNELS.changes, {
        type: 'changed',
        stream: append.stream,
        resourceType,
      });
    } catch (error) {
      // The main loop's periodic sweep finds the change anyway: not an error of the request.
      ctx.runtime.log.warn('api: change notice not published', {
        stream: append.stream,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

/**
 * Decides and commits, retrying from a fresh read when another writer got in between and the
 * client named no rev. `decide` must re-read everything it uses.
 */
async function decideAndCommit(
  ctx: RequestContext,
  options: { readonly revGiven: boolean; readonly forDelete?: boolean },
  decide: () => Promise<Decision>,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const decision = await decide();
    if (!decision.ok) throw decisionError(decision.error, options.forDelete === true);
    try {
      await commit(ctx, decision.appends);
      return decision.id;
    } catch (error) {
      if (
        error instanceof ConcurrencyError &&
        !options.revGiven &&
        attempt < ctx.limits.writeAttempts
      )
        continue;
      throw error;
    }
  }
}

const data = <T>(row: Row): T => row.data as unknown as T;

function str(input: JsonObject, name: string): string | undefined {
  const value = input[name];
  return typeof value === 'string' ? value : undefined;
}

function num(input: JsonObject, name: string): number | undefined {
  const value = input[name];
  return typeof value === 'number' ? value : undefined;
}

/** Rows of `type` by id, skipping ids that have none. */
async function rowsByIds(ctx: RequestContext, ids: readonly string[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const id of ids) {
    const row = await readRow(ctx, id);
    if (row !== null) rows.push(row);
  }
  return rows;
}

/** Creates a resource of `type` from validated `input` (defaults applied). */
export async function createResource(
  ctx: RequestContext,
  type: string,
  input: JsonObject,
): Promise<WriteResult> {
  const dctx = decideContext(ctx);
  const accountId = ctx.caller.accountId;
  switch (type) {
    case 'account': {
      const id = await decideAndCommit(ctx, { revGiven: false }, async () =>
        decideCreateAccount(
          { name: str(input, 'name')!, kind: (str(input, 'kind') ?? 'user') as AccountKind },
          (await listAllRows(ctx, 'account')).map((r) => data<AccountRow>(r)),
          dctx,
        ),
      );
      return { id, extra: {} };
    }
    case 'apiKey': {
      const owner = str(input, 'accountId') ?? accountId;
      const account = await loadReference(ctx, 'account', owner, 'accountId');
      const publicValue = newAccessKey(ctx.secrets);
      const secret = newSecretKey(ctx.secrets);
      const salt = newSalt(ctx.secrets);
      const id = await decideAndCommit(ctx, { revGiven: false }, async () =>
        decideCreateApiKey(
          {
            accountId: account.id,
            name: str(input, 'name') ?? publicValue,
            publicValue,
            secret,
            salt,
          },
          data<AccountRow>(account),
          (await listAllRows(ctx, 'apiKey')).map((r) => data<ApiKeyRow>(r)),
          dctx,
        ),
      );
      return { id, extra: { secretValue: secret } };
    }
    case 'host': {
      const vcpus = num(input, 'vcpus');
      const memoryMb = num(input, 'memoryMb');
      const poolSizeGb = num(input, 'poolSizeGb');
      const id = await decideAndCommit(ctx, { revGiven: false }, async () =>
        decideCreateHost(
          {
            name: str(input, 'name')!,
            kind: str(input, 'kind') as HostKind,
            ...(vcpus === undefined ? {} : { vcpus }),
            ...(memoryMb === undefined ? {} : { memoryMb }),
            ...(poolSizeGb === undefined ? {} : { poolSizeGb }),
          },
          (await listAllRows(ctx, 'host')).map((r) => data<HostRow>(r)),
          dctx,
        ),
      );
      return { id, extra: {} };
    }
    case 'virtualMachine': {
      const volumes = Array.isArray(input['volumes']) ? input['volumes'] : [];
      const extras = volumes.map((v) => {
        const spec = v as JsonObject;
        const name = str(spec, 'name');
        return { sizeGb: num(spec, 'sizeGb')!, ...(name === undefined ? {} : { name }) };
      });
      const id = await decideAndCommit(ctx, { revGiven: false }, () =>
        Promise.resolve(
          decideCreateVm(
            {
              accountId,
              name: str(input, 'name')!,
              imageId: str(input, 'imageId')!,
              vcpus: num(input, 'vcpus')!,
              memoryMb: num(input, 'memoryMb')!,
              rootDiskGb: num(input, 'rootDiskGb')!,
              volumes: extras,
              start: input['startOnCreate'] !== false,
            },
            dctx,
          ),
        ),
      );
      return { id, extra: {} };
    }
    case 'volume': {
      const sourceId = str(input, 'sourceSnapshotId');
      const sizeGb = num(input, 'sizeGb');
      const id = await decideAndCommit(ctx, { revGiven: false }, async () => {
        const source =
          sourceId === undefined
            ? null
            : data<SnapshotRow>(await loadReference(ctx, 'snapshot', sourceId, 'sourceSnapshotId'));
        return decideCreateVolume(
          {
            accountId,
            name: str(input, 'name') ?? 'volume',
            ...(sizeGb === undefined ? {} : { sizeGb }),
            ...(sourceId === undefined ? {} : { sourceSnapshotId: sourceId }),
          },
          source,
          dctx,
          source === null ? null : await volumeAndVm(ctx, source.volumeId),
        );
      });
      return { id, extra: {} };
    }
    case 'snapshot': {
      const volumeId = str(input, 'volumeId')!;
      const id = await decideAndCommit(ctx, { revGiven: false }, async () => {
        const volume = data<VolumeRow>(await loadReference(ctx, 'volume', volumeId, 'volumeId'));
        return decideSnapshotVolume(
          volume,
          { name: str(input, 'name') ?? `${volume.name}-snapshot` },
          dctx,
          await rootOwner(ctx, volume),
        );
      });
      return { id, extra: {} };
    }
    default:
      throw fail(405, 'MethodNotAllowed', `resources of type ${type} cannot be created`);
  }
}

/** Loads `row` again (inside a retry) and checks the expected rev. */
async function fresh(ctx: RequestContext, row: Row, rev: number | null): Promise<Row> {
  const now = await readRow(ctx, row.id);
  if (now === null) throw fail(404, 'NotFound', `${row.type} ${row.id} not found`);
  if (rev !== null && rev !== now.version)
    throw fail(409, 'Conflict', `${row.type} ${row.id} is at rev ${now.version}, not ${rev}`, {
      detail: 'read the resource again and retry with its current rev',
    });
  return now;
}

/**
 * The read of the row of the VM `volume` is attached to, or null when it is detached: nothing is
 * read then, and the caller awaits nothing (the reads of a request keep their order and timing).
 */
function readAttachedVm(ctx: RequestContext, volume: VolumeRow): Promise<Row | null> | null {
  return volume.virtualMachineId === null ? null : readRow(ctx, volume.virtualMachineId);
}

/** The VM whose root `volume` is (null for other volumes): a snapshot or clone needs it alive. */
async function rootOwner(ctx: RequestContext, volume: VolumeRow): Promise<VmRow | null> {
  if (!volume.root) return null;
  const read = readAttachedVm(ctx, volume);
  return vmOrNull(read === null ? null : await read);
}

/** A snapshot's volume and, for a root volume, its VM; null when the volume is gone from the store. */
async function volumeAndVm(
  ctx: RequestContext,
  volumeId: string,
): Promise<{ volume: VolumeRow; vm: VmRow | null } | null> {
  const row = await readRow(ctx, volumeId);
  if (row === null) return null;
  const volume = data<VolumeRow>(row);
  return { volume, vm: await rootOwner(ctx, volume) };
}

/** The VM of a row read by id, or null when there is none. */
function vmOrNull(row: Row | null): VmRow | null {
  return row === null ? null : data<VmRow>(row);
}

/** Every snapshot and volume of an account: what the dependent-clone rules look at. */
async function accountStorage(ctx: RequestContext, accountId: string | null) {
  if (accountId === null) return { snapshots: [], volumes: [] };
  return {
    snapshots: (await listAccountRows(ctx, 'snapshot', accountId)).map((r) => data<SnapshotRow>(r)),
    volumes: (await listAccountRows(ctx, 'volume', accountId)).map((r) => data<VolumeRow>(r)),
  };
}

/**
 * Runs action `action` with validated `input` on `row` (loaded and visible). `rev` is the revision
 * the client expects, or null. Returns the resource to answer with.
 */
export async function runAction(
  ctx: RequestContext,
  row: Row,
  action: string,
  input: JsonObject,
  rev: number | null,
): Promise<WriteResult> {
  const dctx = decideContext(ctx);
  const options = { revGiven: rev !== null };
  const run = (decide: (current: Row) => Promise<Decision> | Decision) =>
    decideAndCommit(ctx, options, async () => decide(await fresh(ctx, row, rev)));
  const key = `${row.type}.${action}`;
  switch (key) {
    case 'virtualMachine.start':
      return { id: await run((r) => decideStartVm(data<VmRow>(r), dctx)), extra: {} };
    case 'virtualMachine.stop':
      return { id: await run((r) => decideStopVm(data<VmRow>(r), dctx)), extra: {} };
    case 'virtualMachine.restart':
      return { id: await run((r) => decideRestartVm(data<VmRow>(r), dctx)), extra: {} };
    case 'host.maintenance':
      return { id: await run((r) => decideHostMaintenance(data<HostRow>(r), dctx)), extra: {} };
    case 'host.activate':
      return { id: await run((r) => decideHostActivate(data<HostRow>(r), dctx)), extra: {} };
    case 'host.remove':
      return {
        id: await run(async (r) => {
          // Every row that could be placed on the host, read in this order.
          const vms = (await listAllRows(ctx, 'virtualMachine')).map((x) => data<VmRow>(x));
          const volumes = (await listAllRows(ctx, 'volume')).map((x) => data<VolumeRow>(x));
          const snapshots = (await listAllRows(ctx, 'snapshot')).map((x) => data<SnapshotRow>(x));
          return decideHostRemove(data<HostRow>(r), { vms, volumes, snapshots }, dctx);
        }),
        extra: {},
      };
    case 'volume.attach': {
      const vmId = str(input, 'virtualMachineId')!;
      return {
        id: await run(async (r) => {
          const vm = data<VmRow>(
            await loadReference(ctx, 'virtualMachine', vmId, 'virtualMachineId'),
          );
          const vmVolumes = (await rowsByIds(ctx, vm.volumeIds)).map((x) => data<VolumeRow>(x));
          return decideAttachVolume(data<VolumeRow>(r), vm, vmVolumes, dctx);
        }),
        extra: {},
      };
    }
    case 'volume.detach':
      return {
        id: await run(async (r) => {
          const volume = data<VolumeRow>(r);
          const read = readAttachedVm(ctx, volume);
          return decideDetachVolume(volume, vmOrNull(read === null ? null : await read), dctx);
        }),
        extra: {},
      };
    case 'volume.grow':
      return {
        id: await run(async (r) => {
          const volume = data<VolumeRow>(r);
          const read = readAttachedVm(ctx, volume);
          const vm = vmOrNull(read === null ? null : await read);
          const vmVolumes =
            vm === null ? [] : (await rowsByIds(ctx, vm.volumeIds)).map((x) => data<VolumeRow>(x));
          return decideGrowVolume(volume, num(input, 'sizeGb')!, { vm, vmVolumes }, dctx);
        }),
        extra: {},
      };
    case 'volume.snapshot':
      return {
        id: await run(async (r) => {
          const volume = data<VolumeRow>(r);
          return decideSnapshotVolume(
            volume,
            { name: str(input, 'name') ?? `${volume.name}-snapshot` },
            dctx,
            await rootOwner(ctx, volume),
          );
        }),
        extra: {},
      };
    case 'volume.restore':
      return {
        id: await run(async (r) => {
          const volume = data<VolumeRow>(r);
          const snapshots = (await listAccountRows(ctx, 'snapshot', volume.accountId))
            .map((x) => data<SnapshotRow>(x))
            .filter((s) => s.volumeId === volume.id);
          const read = readAttachedVm(ctx, volume);
          const vm = vmOrNull(read === null ? null : await read);
          return decideRestoreVolume(volume, str(input, 'snapshotId')!, { snapshots, vm }, dctx);
        }),
        extra: {},
      };
    default:
      throw fail(
        404,
        'ActionNotAvailable',
        `${row.type} has no action ${JSON.stringify(action.slice(0, 60))}`,
      );
  }
}

/**
 * Applies a PUT's validated `changes` (only fields the schema marks updatable, each different from
 * the current value) to `row` (loaded and visible). `rev`: the revision the client expects, or null.
 * Today `name` is the only updatable field; a rename to the name the resource has by the time of
 * the write writes nothing.
 */
export async function updateResource(
  ctx: RequestContext,
  row: Row,
  changes: JsonObject,
  rev: number | null,
): Promise<WriteResult> {
  const fields = Object.keys(changes);
  const name = str(changes, 'name');
  // The schemas mark only names updatable; anything else here means the schema and this handler
  // disagree (a bug, answered 500), never bad input.
  if (name === undefined || fields.length !== 1)
    throw new Error(`update of ${row.type} fields ${fields.join(', ')} is not implemented`);
  const dctx = decideContext(ctx);
  const uniqueAmong = row.type === 'account' || row.type === 'host';
  const id = await decideAndCommit(ctx, { revGiven: rev !== null }, async () => {
    const current = await fresh(ctx, row, rev);
    const existing = uniqueAmong
      ? (await listAllRows(ctx, row.type)).map((r) => data<RenamableRow>(r))
      : undefined;
    return decideRename(data<RenamableRow>(current), name, dctx, existing);
  });
  return { id, extra: {} };
}

/** True when a resource is already gone or on its way out (DELETE is then answered, not written). */
export function isDeleted(row: Row): boolean {
  return (row.data['removed'] ?? null) !== null || row.data['desired'] === 'deleted';
}

/** Deletes `row` (loaded and visible); idempotent: a deleted resource is answered as it is. */
export async function deleteResource(
  ctx: RequestContext,
  row: Row,
  rev: number | null,
): Promise<WriteResult> {
  if (isDeleted(row)) return { id: row.id, extra: {} };
  const dctx = decideContext(ctx);
  const options = { revGiven: rev !== null, forDelete: true };
  const run = (decide: (current: Row) => Promise<Decision> | Decision) =>
    decideAndCommit(ctx, options, async () => decide(await fresh(ctx, row, rev)));
  switch (row.type) {
    case 'virtualMachine':
      return {
        id: await run(async (r) =>
          decideDeleteVm(data<VmRow>(r), await accountStorage(ctx, r.accountId), dctx),
        ),
        extra: {},
      };
    case 'volume':
      return {
        id: await run(async (r) =>
          decideDeleteVolume(data<VolumeRow>(r), await accountStorage(ctx, r.accountId), dctx),
        ),
        extra: {},
      };
    case 'snapshot':
      return {
        id: await run(async (r) =>
          decideDeleteSnapshot(
            data<SnapshotRow>(r),
            (await accountStorage(ctx, r.accountId)).volumes,
            dctx,
          ),
        ),
        extra: {},
      };
    case 'apiKey':
      return { id: await run((r) => decideRevokeApiKey(data<ApiKeyRow>(r), dctx)), extra: {} };
    case 'account':
      return {
        id: await run(async (r) => {
          // Every account (the last-admin rule), then what this account owns, read in this order.
          const accounts = (await listAllRows(ctx, 'account')).map((x) => data<AccountRow>(x));
          const apiKeys = (await listAccountRows(ctx, 'apiKey', r.id)).map((x) =>
            data<ApiKeyRow>(x),
          );
          const vms = (await listAccountRows(ctx, 'virtualMachine', r.id)).map((x) =>
            data<VmRow>(x),
          );
          const related = { accounts, apiKeys, vms, ...(await accountStorage(ctx, r.id)) };
          return decideDeleteAccount(data<AccountRow>(r), related, dctx);
        }),
        extra: {},
      };
    default:
      throw fail(405, 'MethodNotAllowed', `resources of type ${row.type} cannot be deleted`, {
        headers: { allow: 'GET, HEAD, PUT' },
      });
  }
}
