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
 *
 * The decisions live in src/model/decide/, one file per resource type beside the shared kit; this
 * module is their one import path, so callers do not follow the files around.
 */
export type { DecideContext, DecideError, DecideErrorCode, Decision } from './decide/kit.ts';
export { dependentClones } from './decide/clones.ts';
export {
  decideCreateAccount,
  decideCreateApiKey,
  decideDeleteAccount,
  decideRevokeApiKey,
  hashSecret,
  type CreateAccountInput,
  type CreateApiKeyInput,
} from './decide/account.ts';
export { decideRename, type RenamableRow } from './decide/rename.ts';
export {
  decideCreateHost,
  decideHostActivate,
  decideHostMaintenance,
  decideHostRemove,
  type CreateHostInput,
} from './decide/host.ts';
export {
  decideCreateVm,
  decideDeleteVm,
  decideRestartVm,
  decideStartVm,
  decideStopVm,
  type CreateVmInput,
} from './decide/vm.ts';
export {
  decideAttachVolume,
  decideCreateVolume,
  decideDeleteVolume,
  decideDetachVolume,
  decideGrowVolume,
  decideRestoreVolume,
  type CreateVolumeInput,
} from './decide/volume.ts';
export { decideDeleteSnapshot, decideSnapshotVolume, latestSnapshot } from './decide/snapshot.ts';
