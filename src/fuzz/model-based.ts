/**
 * Model-based testing of the whole cloud with `fc.commands`: a reference model of what users asked
 * for (VMs, volumes, snapshots and their desired state, attachments and sizes) runs side by side
 * with the simulated cloud. Every command is an API call; after it,
 * - the API must have accepted it when the model says the request is valid in a settled cloud,
 *   and refused it when the model says it is not (while work is in flight either can be right, and
 *   the model follows what the API answered);
 * - the API's view of the resources it touched (`desired`, size, attachment) must equal the
 *   model's.
 * A `settle` command (and the end of every run) lets the simulation run until the checkers see
 * everything converged, then compares the cloud's actual state with the model: every live VM in
 * the state its user asked for on exactly its host, every volume and snapshot present on its
 * storage node with the size and attachment the model says, nothing deleted left on any host,
 * and no resource whose last command failed (the cloud has ample capacity and, but for a lossy
 * bus in one variant, no faults: a failure is a bug). Safety invariants are checked after every
 * step as in every run.
 *
 * The simulation runs once per case; the command sequence is driven from inside it (each command
 * awaits an API answer that the simulated network delivers), so everything stays deterministic.
 */
import fc from 'fast-check';
import { Checkers } from '../sim/checkers.ts';
import { basicAuth, createCloud, SIM_API_ORIGIN, type Cloud } from '../sim/cloud.ts';
import { Simulation, type RunResult } from '../sim/simulation.ts';
import { createBusFaults } from '../faults/bus-faults.ts';
import {
  datasetName,
  isRemoved,
  snapshotDatasetName,
  type Row,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../model/resources.ts';
import { SEED_MAX } from '../lib/prng.ts';

// ---------------------------------------------------------------------------------------------
// The reference model.

interface ModelVm {
  readonly key: string;
  desired: 'running' | 'stopped' | 'deleted';
  /** Extra volumes attached, by model key, in attach order. */
  readonly extras: string[];
}

interface ModelVolume {
  readonly key: string;
  sizeGb: number;
  /** The VM (model key) it is attached to, or null. */
  vm: string | null;
  /** Its VM was deleted: the main loop detaches it later, so the API may still show the VM. */
  detaching: boolean;
  deleted: boolean;
  /** The snapshot (model key) it was cloned from, or null. */
  readonly source: string | null;
}

interface ModelSnapshot {
  readonly key: string;
  readonly volume: string;
  readonly sizeGb: number;
  deleted: boolean;
  /** Its volume was deleted: the main loop deletes it later, so the API may still show it present. */
  cascading: boolean;
}

/** What users asked for, as the API should have recorded it. */
export class Model {
  readonly vms: ModelVm[] = [];
  readonly volumes: ModelVolume[] = [];
  readonly snapshots: ModelSnapshot[] = [];
  /** True after a settle until the next accepted write: then every resource is at rest. */
  settled = true;

  /** Everything converged: cascades are done. */
  settle(): void {
    this.settled = true;
    for (const volume of this.volumes) volume.detaching = false;
    for (const snapshot of this.snapshots) snapshot.cascading = false;
  }

  liveVms(): ModelVm[] {
    return this.vms.filter((vm) => vm.desired !== 'deleted');
  }
  liveVolumes(): ModelVolume[] {
    return this.volumes.filter((v) => !v.deleted);
  }
  liveSnapshots(): ModelSnapshot[] {
    return this.snapshots.filter((s) => !s.deleted);
  }
  vm(key: string): ModelVm {
    return this.vms.find((vm) => vm.key === key) as ModelVm;
  }
  volume(key: string): ModelVolume {
    return this.volumes.find((v) => v.key === key) as ModelVolume;
  }
  snapshot(key: string): ModelSnapshot {
    return this.snapshots.find((s) => s.key === key) as ModelSnapshot;
  }
  /** Live volumes cloned from live or deleted snapshots of `volume`, or from `snapshot`. */
  hasLiveClones(snapshotKeys: readonly string[]): boolean {
    return this.liveVolumes().some((v) => v.source !== null && snapshotKeys.includes(v.source));
  }
  /** Extra storage attached to a VM, GB. */
  extraGb(vmKey: string): number {
    return this.liveVolumes()
      .filter((v) => v.vm === vmKey)
      .reduce((sum, v) => sum + v.sizeGb, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The system under test: the simulated cloud, driven through its API.

/** A failed expectation: ends the case with this message. */
class ModelFailure extends Error {
  override name = 'ModelFailure';
}

/** The simulated cloud with helpers to call its API and wait inside the simulation. */
export class Real {
  /** Model key → resource id. */
  readonly ids = new Map<string, string>();
  /** What the commands did, for the failure report. */
  readonly log: string[] = [];

  constructor(
    readonly cloud: Cloud,
    readonly checkers: Checkers,
  ) {}

  get sim(): Simulation {
    return this.cloud.sim;
  }

  id(key: string): string {
    const id = this.ids.get(key);
    if (id === undefined) throw new ModelFailure(`no id recorded for ${key}`);
    return id;
  }

  nowMs(): number {
    return this.sim.scheduler.epochMs + Math.floor(this.sim.scheduler.now);
  }

  /** Resolves after `delayMs` of virtual time. */
  wait(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.sim.schedule({ delayMs, label: 'model.wait', run: () => resolve() });
    });
  }

  /** One API call as the user. Fails the case when the API does not answer or answers 5xx. */
  async call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const keys = this.cloud.accounts.get('user');
    if (keys === undefined) throw new ModelFailure('the user account is missing');
    const response = await this.cloud.request({
      method,
      url: `${SIM_API_ORIGIN}${path}`,
      headers: {
        accept: 'application/json',
        authorization: basicAuth(keys.accessKey, keys.secretKey),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? '' : JSON.stringify(body),
    });
    if (response === null) throw new ModelFailure(`${method} ${path}: the API did not answer`);
    if (response.status >= 500)
      throw new ModelFailure(
        `${method} ${path}: ${response.status} ${response.body.slice(0, 300)}`,
      );
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(response.body) as Record<string, unknown>;
    } catch {
      throw new ModelFailure(`${method} ${path}: the answer is not JSON`);
    }
    if (response.status >= 200 && response.status < 300 && method !== 'GET') {
      const id = json['id'];
      const rev = json['rev'];
      if (typeof id === 'string' && typeof rev === 'number')
        this.checkers.acknowledge({ stream: id, version: rev, what: `${method} ${path}` });
    }
    return { status: response.status, json };
  }

  /** A resource as the API shows it. */
  async read(collection: string, id: string): Promise<Record<string, unknown>> {
    const { status, json } = await this.call('GET', `/v1/${collection}/${id}`);
    if (status !== 200) throw new ModelFailure(`GET /v1/${collection}/${id}: ${status}`);
    return json;
  }

  /** The non-root volumes the API lists under a VM's `volumes` link, by name. */
  async attachedTo(vmId: string): Promise<Map<string, string>> {
    const { status, json } = await this.call('GET', `/v1/virtualmachines/${vmId}/volumes`);
    if (status !== 200)
      throw new ModelFailure(`GET /v1/virtualmachines/${vmId}/volumes: ${status}`);
    const data = Array.isArray(json['data']) ? (json['data'] as Record<string, unknown>[]) : [];
    return new Map(
      data
        .filter((volume) => volume['root'] !== true && volume['removed'] === null)
        .map((volume) => [String(volume['name']), String(volume['id'])]),
    );
  }

  /** Runs the simulation until the checkers see everything converged, or fails after `budgetMs`. */
  async settle(budgetMs: number): Promise<void> {
    const deadline = this.sim.scheduler.now + budgetMs;
    for (;;) {
      const open = this.checkers.unconverged(this.nowMs());
      if (open === undefined) return;
      if (this.sim.scheduler.now >= deadline)
        throw new ModelFailure(`not converged within ${budgetMs} ms of settling: ${open}`);
      await this.wait(1_000);
    }
  }

  rows(): Map<string, Row> {
    return new Map(this.checkers.rows().map((row) => [row.id, row]));
  }
}

// ---------------------------------------------------------------------------------------------
// Commands.

/** An abstract call; indexes pick among the live model resources of that kind (modulo). */
export type ModelOp =
  | {
      readonly kind: 'vm.create';
      readonly vcpus: number;
      readonly memoryMb: number;
      readonly extraGb: readonly number[];
      readonly start: boolean;
    }
  | {
      readonly kind: 'vm.action';
      readonly vm: number;
      readonly action: 'start' | 'stop' | 'restart';
    }
  | { readonly kind: 'vm.delete'; readonly vm: number }
  | { readonly kind: 'volume.create'; readonly sizeGb: number }
  | { readonly kind: 'volume.clone'; readonly snapshot: number }
  | { readonly kind: 'volume.snapshot'; readonly volume: number }
  | { readonly kind: 'volume.restore'; readonly snapshot: number }
  | { readonly kind: 'volume.attach'; readonly volume: number; readonly vm: number }
  | { readonly kind: 'volume.detach'; readonly volume: number }
  | { readonly kind: 'volume.grow'; readonly volume: number; readonly addGb: number }
  | { readonly kind: 'volume.delete'; readonly volume: number }
  | { readonly kind: 'snapshot.delete'; readonly snapshot: number }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'settle' };

/** Whether a settled cloud must accept the call, must refuse it, or either may be right. */
type Expectation = 'accept' | 'refuse' | 'either';

function pick<T>(items: readonly T[], index: number): T | undefined {
  return items.length === 0 ? undefined : items[index % items.length];
}

/** Budget of one settle, virtual ms: long enough for the retry backoff to run out several times. */
const SETTLE_BUDGET_MS = 20 * 60_000;

/** Largest extra storage per VM the API allows, GB. */
const EXTRA_GB_MAX = 1229;

class ModelCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly op: ModelOp) {}

  check(model: Readonly<Model>): boolean {
    const op = this.op;
    switch (op.kind) {
      case 'vm.create':
      case 'volume.create':
      case 'wait':
      case 'settle':
        return true;
      case 'vm.action':
      case 'vm.delete':
        return model.liveVms().length > 0;
      case 'volume.attach':
        return model.liveVolumes().length > 0 && model.liveVms().length > 0;
      case 'volume.snapshot':
      case 'volume.detach':
      case 'volume.grow':
      case 'volume.delete':
        return model.liveVolumes().length > 0;
      case 'volume.clone':
      case 'volume.restore':
      case 'snapshot.delete':
        return model.liveSnapshots().length > 0;
    }
  }

  toString(): string {
    const { kind, ...rest } = this.op;
    return `${kind}${Object.keys(rest).length === 0 ? '' : ` ${JSON.stringify(rest)}`}`;
  }

  async run(model: Model, real: Real): Promise<void> {
    real.log.push(this.toString());
    const op = this.op;
    switch (op.kind) {
      case 'wait':
        await real.wait(op.ms);
        return;
      case 'settle':
        await real.settle(SETTLE_BUDGET_MS);
        compareObserved(model, real);
        model.settle();
        return;
      case 'vm.create':
        return this.createVm(op, model, real);
      case 'volume.create': {
        const key = `vol${model.volumes.length + 1}`;
        const { status, json } = await real.call('POST', '/v1/volumes', {
          name: key,
          sizeGb: op.sizeGb,
        });
        expectStatus('accept', status, this);
        real.ids.set(key, String(json['id']));
        model.volumes.push({
          key,
          sizeGb: op.sizeGb,
          vm: null,
          detaching: false,
          deleted: false,
          source: null,
        });
        model.settled = false;
        await checkDesired(model, real, [key]);
        return;
      }
      default:
        return this.action(op, model, real);
    }
  }

  private async createVm(
    op: Extract<ModelOp, { kind: 'vm.create' }>,
    model: Model,
    real: Real,
  ): Promise<void> {
    const key = `vm${model.vms.length + 1}`;
    const { status, json } = await real.call('POST', '/v1/virtualmachines', {
      name: key,
      imageId: 'img-00000001',
      vcpus: op.vcpus,
      memoryMb: op.memoryMb,
      ...(op.extraGb.length === 0
        ? {}
        : { volumes: op.extraGb.map((sizeGb, i) => ({ name: `${key}-x${i + 1}`, sizeGb })) }),
      ...(op.start ? {} : { startOnCreate: false }),
    });
    expectStatus('accept', status, this);
    const id = String(json['id']);
    real.ids.set(key, id);
    const attached = await real.attachedTo(id);
    const extras: string[] = [];
    op.extraGb.forEach((_, i) => {
      const volumeId = attached.get(`${key}-x${i + 1}`);
      if (volumeId === undefined)
        throw new ModelFailure(
          `${key}: created with extra volume ${key}-x${i + 1}, the API has none`,
        );
      const volumeKey = `vol${model.volumes.length + 1}`;
      real.ids.set(volumeKey, volumeId);
      model.volumes.push({
        key: volumeKey,
        sizeGb: op.extraGb[i] ?? 0,
        vm: key,
        detaching: false,
        deleted: false,
        source: null,
      });
      extras.push(volumeKey);
    });
    model.vms.push({ key, desired: op.start ? 'running' : 'stopped', extras });
    model.settled = false;
    await checkDesired(model, real, [key, ...extras]);
  }

  private async action(op: CallOp, model: Model, real: Real): Promise<void> {
    const plan = planOf(op, model);
    if (plan === undefined) return;
    const { status, json } = await real.call(plan.method, plan.path(real), plan.body?.(real));
    expectStatus(model.settled ? plan.expect : 'either', status, this);
    if (status < 200 || status >= 300) return;
    const touched = plan.apply(json, real);
    model.settled = false;
    await checkDesired(model, real, touched);
  }
}

/** What a call does: request, the expectation in a settled cloud, and its effect on the model. */
interface CallPlan {
  readonly method: 'POST' | 'DELETE';
  readonly path: (real: Real) => string;
  readonly body?: (real: Real) => unknown;
  readonly expect: Expectation;
  /** Applies an accepted call to the model; returns the model keys whose API view to check. */
  readonly apply: (json: Record<string, unknown>, real: Real) => string[];
}

/** The calls {@link planOf} plans: those on resources that exist. */
type CallOp = Exclude<ModelOp, { kind: 'vm.create' | 'volume.create' | 'wait' | 'settle' }>;

/** The plan of `op` on the live resource its index picks; undefined when there is none. */
function planOf(op: CallOp, model: Model): CallPlan | undefined {
  // An op acts on its volume if it names one (an attach names its VM too), else on its VM, else
  // on its snapshot.
  if ('volume' in op) {
    const volume = pick(model.liveVolumes(), op.volume);
    return volume === undefined ? undefined : volumePlan(op, volume, model);
  }
  if ('vm' in op) {
    const vm = pick(model.liveVms(), op.vm);
    return vm === undefined ? undefined : vmPlan(op, vm, model);
  }
  const snapshot = pick(model.liveSnapshots(), op.snapshot);
  return snapshot === undefined ? undefined : snapshotPlan(op, snapshot, model);
}

/** `POST /v1/<collection>/<id>?action=<action>` on the resource that model key `key` names. */
function actionOn(key: string, action: string): Pick<CallPlan, 'method' | 'path'> {
  return {
    method: 'POST',
    path: (real) => `/v1/${collectionOf(key)}/${real.id(key)}?action=${action}`,
  };
}

/** `DELETE /v1/<collection>/<id>` of the resource that model key `key` names. */
function deletionOf(key: string): Pick<CallPlan, 'method' | 'path'> {
  return { method: 'DELETE', path: (real) => `/v1/${collectionOf(key)}/${real.id(key)}` };
}

/**
 * The `apply` of a call that creates a resource: its id is recorded under model key `key`, `add`
 * puts it in the model, and its API view is checked.
 */
function created(key: string, add: () => void): CallPlan['apply'] {
  return (json, real) => {
    real.ids.set(key, String(json['id']));
    add();
    return [key];
  };
}

/** The plan of a call on VM `vm`. */
function vmPlan(
  op: Extract<CallOp, { kind: 'vm.action' | 'vm.delete' }>,
  vm: ModelVm,
  model: Model,
): CallPlan {
  switch (op.kind) {
    case 'vm.action': {
      const running = vm.desired === 'running';
      const expect: Expectation =
        op.action === 'start' ? (running ? 'refuse' : 'accept') : running ? 'accept' : 'refuse';
      return {
        ...actionOn(vm.key, op.action),
        expect,
        apply: () => {
          vm.desired = op.action === 'stop' ? 'stopped' : 'running';
          return [vm.key];
        },
      };
    }
    case 'vm.delete':
      return {
        ...deletionOf(vm.key),
        expect: 'accept',
        apply: () => {
          vm.desired = 'deleted';
          // The root volume goes with the VM; extra volumes are detached and kept (the cascade
          // happens in the main loop: the API view of the volumes changes later, at settle).
          for (const volume of model.liveVolumes()) {
            if (volume.vm !== vm.key) continue;
            volume.vm = null;
            volume.detaching = true;
          }
          vm.extras.length = 0;
          return [vm.key];
        },
      };
  }
}

/** The plan of a call on volume `volume`; undefined when it needs a VM and there is none. */
function volumePlan(
  op: Extract<CallOp, { volume: number }>,
  volume: ModelVolume,
  model: Model,
): CallPlan | undefined {
  switch (op.kind) {
    case 'volume.snapshot': {
      const key = `snap${model.snapshots.length + 1}`;
      return {
        ...actionOn(volume.key, 'snapshot'),
        body: () => ({ name: key }),
        expect: 'accept',
        apply: created(key, () =>
          model.snapshots.push({
            key,
            volume: volume.key,
            sizeGb: volume.sizeGb,
            deleted: false,
            cascading: false,
          }),
        ),
      };
    }
    case 'volume.attach': {
      const vm = pick(model.liveVms(), op.vm);
      if (vm === undefined) return undefined;
      const fits = model.extraGb(vm.key) + volume.sizeGb <= EXTRA_GB_MAX;
      const expect: Expectation =
        volume.vm === null && vm.desired === 'stopped' && fits ? 'accept' : 'refuse';
      return {
        ...actionOn(volume.key, 'attach'),
        body: (real) => ({ virtualMachineId: real.id(vm.key) }),
        expect,
        apply: () => {
          volume.vm = vm.key;
          volume.detaching = false;
          vm.extras.push(volume.key);
          return [volume.key, vm.key];
        },
      };
    }
    case 'volume.detach': {
      const vm = volume.vm === null ? null : model.vm(volume.vm);
      const expect: Expectation = vm !== null && vm.desired === 'stopped' ? 'accept' : 'refuse';
      return {
        ...actionOn(volume.key, 'detach'),
        expect,
        apply: () => {
          if (vm !== null) vm.extras.splice(vm.extras.indexOf(volume.key), 1);
          volume.vm = null;
          volume.detaching = false;
          return vm === null ? [volume.key] : [volume.key, vm.key];
        },
      };
    }
    case 'volume.grow': {
      const sizeGb = volume.sizeGb + op.addGb;
      const fits =
        sizeGb <= EXTRA_GB_MAX &&
        (volume.vm === null || model.extraGb(volume.vm) + op.addGb <= EXTRA_GB_MAX);
      return {
        ...actionOn(volume.key, 'grow'),
        body: () => ({ sizeGb }),
        expect: fits ? 'accept' : 'refuse',
        apply: () => {
          volume.sizeGb = sizeGb;
          return [volume.key];
        },
      };
    }
    case 'volume.delete': {
      const snapshots = model.snapshots.filter((s) => s.volume === volume.key).map((s) => s.key);
      const expect: Expectation =
        volume.vm === null && !model.hasLiveClones(snapshots) ? 'accept' : 'refuse';
      return {
        ...deletionOf(volume.key),
        expect,
        apply: () => {
          volume.deleted = true;
          // Its snapshots go with it (the main loop deletes them).
          for (const s of model.liveSnapshots()) {
            if (s.volume !== volume.key) continue;
            s.deleted = true;
            s.cascading = true;
          }
          return [volume.key];
        },
      };
    }
  }
}

/** The plan of a call on (or from) snapshot `snapshot`. */
function snapshotPlan(
  op: Extract<CallOp, { snapshot: number }>,
  snapshot: ModelSnapshot,
  model: Model,
): CallPlan {
  switch (op.kind) {
    case 'volume.clone': {
      const key = `vol${model.volumes.length + 1}`;
      return {
        method: 'POST',
        path: () => '/v1/volumes',
        body: (real) => ({ name: key, sourceSnapshotId: real.id(snapshot.key) }),
        expect: 'accept',
        apply: created(key, () =>
          model.volumes.push({
            key,
            sizeGb: snapshot.sizeGb,
            vm: null,
            detaching: false,
            deleted: false,
            source: snapshot.key,
          }),
        ),
      };
    }
    case 'volume.restore': {
      const volume = model.volume(snapshot.volume);
      const siblings = model.liveSnapshots().filter((s) => s.volume === volume.key);
      const vm = volume.vm === null ? null : model.vm(volume.vm);
      const vmRunning = vm !== null && vm.desired === 'running';
      // "The most recent snapshot" is decided by creation time; two snapshots of a volume taken
      // in the same millisecond tie-break by id, which the model cannot know: then either.
      const expect: Expectation =
        volume.deleted || vmRunning ? 'refuse' : siblings.length === 1 ? 'accept' : 'either';
      return {
        ...actionOn(volume.key, 'restore'),
        body: (real) => ({ snapshotId: real.id(snapshot.key) }),
        expect,
        apply: () => [volume.key],
      };
    }
    case 'snapshot.delete':
      return {
        ...deletionOf(snapshot.key),
        expect: model.hasLiveClones([snapshot.key]) ? 'refuse' : 'accept',
        apply: () => {
          snapshot.deleted = true;
          return [snapshot.key];
        },
      };
  }
}

function expectStatus(expect: Expectation, status: number, command: ModelCommand): void {
  const accepted = status >= 200 && status < 300;
  if (expect === 'accept' && !accepted)
    throw new ModelFailure(`${command.toString()}: a settled cloud must accept it, got ${status}`);
  if (expect === 'refuse' && accepted)
    throw new ModelFailure(`${command.toString()}: a settled cloud must refuse it, got ${status}`);
}

function collectionOf(key: string): string {
  return key.startsWith('vm') ? 'virtualmachines' : key.startsWith('vol') ? 'volumes' : 'snapshots';
}

/** The API's view of `keys` (desired state, size, attachment) equals the model's. */
async function checkDesired(model: Model, real: Real, keys: readonly string[]): Promise<void> {
  for (const key of keys) {
    const json = await real.read(collectionOf(key), real.id(key));
    const problems: string[] = [];
    const same = (field: string, expected: unknown): void => {
      if (json[field] !== expected)
        problems.push(
          `${field} is ${JSON.stringify(json[field])}, the model says ${JSON.stringify(expected)}`,
        );
    };
    if (key.startsWith('vm')) {
      const vm = model.vm(key);
      same('desired', vm.desired);
      if (vm.desired !== 'deleted') {
        const ids = [...(await real.attachedTo(real.id(key))).values()].sort();
        const expected = vm.extras.map((k) => real.id(k)).sort();
        if (ids.join(',') !== expected.join(','))
          problems.push(
            `its volumes are [${ids.join(', ')}], the model says [${expected.join(', ')}]`,
          );
      }
    } else if (key.startsWith('vol')) {
      const volume = model.volume(key);
      same('desired', volume.deleted ? 'deleted' : 'present');
      same('sizeGb', volume.sizeGb);
      // A volume of a deleted VM is detached by the main loop, later: either view is right.
      if (!volume.detaching)
        same('virtualMachineId', volume.vm === null ? null : real.id(volume.vm));
    } else {
      const snapshot = model.snapshot(key);
      if (!snapshot.cascading) same('desired', snapshot.deleted ? 'deleted' : 'present');
    }
    if (problems.length > 0)
      throw new ModelFailure(
        `after ${real.log.at(-1) ?? '?'}: ${key} (${real.id(key)}): ${problems.join('; ')}`,
      );
  }
}

/**
 * The failure an agent reported for the last command of a resource, if any. A `stale-token`
 * refusal is fencing at work (a newer lock holder wrote after the command was sent) and no fault
 * of the command: it does not count.
 */
function lastCommandFailed(row: VmRow | VolumeRow | SnapshotRow): string | undefined {
  const result = row.lastResult;
  if (result === null || result.ok || row.lastCommand?.commandId !== result.commandId)
    return undefined;
  if (result.error === 'stale-token') return undefined;
  return `its last command ${result.commandId} failed: ${result.error ?? 'error'}`;
}

/** After settling: the cloud's actual state equals the model's. */
function compareObserved(model: Model, real: Real): void {
  const rows = real.rows();
  const problems: string[] = [];
  const domainsOf = (name: string) =>
    [...real.cloud.computeHosts].flatMap(([hostId, host]) =>
      host
        .domains()
        .filter((d) => d.name === name)
        .map((d) => ({ hostId, state: d.state })),
    );
  const datasetHolders = (name: string): string[] =>
    [...real.cloud.storageNodes]
      .filter(([, node]) => node.datasets().some((d) => d.name === name))
      .map(([nodeId]) => nodeId);
  for (const vm of model.vms) {
    const id = real.id(vm.key);
    const row = rows.get(id) as VmRow | undefined;
    const domains = domainsOf(id);
    if (row === undefined) {
      problems.push(`${vm.key} (${id}) has no row`);
      continue;
    }
    if (vm.desired === 'deleted') {
      if (!isRemoved(row)) problems.push(`${vm.key} (${id}) is ${row.state}, not removed`);
      if (domains.length > 0)
        problems.push(
          `${vm.key} (${id}) was deleted but has a domain on ${domains.map((d) => d.hostId).join(', ')}`,
        );
      continue;
    }
    if (row.state !== vm.desired)
      problems.push(
        `${vm.key} (${id}) is ${row.state}${row.lastError === null ? '' : ` (${row.lastError})`}, the model says ${vm.desired}`,
      );
    const failed = lastCommandFailed(row);
    if (failed !== undefined) problems.push(`${vm.key} (${id}): ${failed}`);
    const elsewhere = domains.filter((d) => d.hostId !== row.hostId);
    if (elsewhere.length > 0)
      problems.push(
        `${vm.key} (${id}) has a domain on ${elsewhere[0]?.hostId}, but is placed on ${row.hostId}`,
      );
    const here = domains.find((d) => d.hostId === row.hostId);
    const running = here !== undefined && (here.state === 'running' || here.state === 'paused');
    if (vm.desired === 'running' && !running)
      problems.push(
        `${vm.key} (${id}) should run on ${row.hostId}, its domain is ${here?.state ?? 'absent'}`,
      );
    if (vm.desired === 'stopped' && running)
      problems.push(
        `${vm.key} (${id}) should be stopped, its domain is ${here?.state ?? 'absent'}`,
      );
    const extras = vm.extras.map((k) => real.id(k)).join(',');
    if (row.volumeIds.join(',') !== extras)
      problems.push(
        `${vm.key} (${id}) has volumes [${row.volumeIds.join(', ')}], the model says [${extras}]`,
      );
  }
  for (const volume of model.volumes) {
    const id = real.id(volume.key);
    const row = rows.get(id) as VolumeRow | undefined;
    const holders = datasetHolders(datasetName(id));
    if (row === undefined) {
      problems.push(`${volume.key} (${id}) has no row`);
      continue;
    }
    if (volume.deleted) {
      if (!isRemoved(row)) problems.push(`${volume.key} (${id}) is ${row.state}, not removed`);
      if (holders.length > 0)
        problems.push(
          `${volume.key} (${id}) was deleted but its dataset is on ${holders.join(', ')}`,
        );
      continue;
    }
    const state = volume.vm === null ? 'available' : 'attached';
    if (row.state !== state)
      problems.push(
        `${volume.key} (${id}) is ${row.state}${row.lastError === null ? '' : ` (${row.lastError})`}, the model says ${state}`,
      );
    const failed = lastCommandFailed(row);
    if (failed !== undefined) problems.push(`${volume.key} (${id}): ${failed}`);
    if (row.sizeGb !== volume.sizeGb)
      problems.push(`${volume.key} (${id}) has ${row.sizeGb} GB, the model says ${volume.sizeGb}`);
    const vmId = volume.vm === null ? null : real.id(volume.vm);
    if (row.virtualMachineId !== vmId)
      problems.push(
        `${volume.key} (${id}) is attached to ${row.virtualMachineId}, the model says ${vmId}`,
      );
    if (row.storageNodeId === null || holders.join(',') !== row.storageNodeId)
      problems.push(
        `${volume.key} (${id}) is placed on ${row.storageNodeId}, its dataset is on [${holders.join(', ')}]`,
      );
  }
  for (const snapshot of model.snapshots) {
    const id = real.id(snapshot.key);
    const row = rows.get(id) as SnapshotRow | undefined;
    if (row === undefined) {
      problems.push(`${snapshot.key} (${id}) has no row`);
      continue;
    }
    const holders = datasetHolders(snapshotDatasetName(row.volumeId, id));
    if (snapshot.deleted) {
      if (!isRemoved(row)) problems.push(`${snapshot.key} (${id}) is ${row.state}, not removed`);
      if (holders.length > 0)
        problems.push(`${snapshot.key} (${id}) was deleted but is on ${holders.join(', ')}`);
      continue;
    }
    if (row.state !== 'available')
      problems.push(
        `${snapshot.key} (${id}) is ${row.state}${row.lastError === null ? '' : ` (${row.lastError})`}, the model says available`,
      );
    const failed = lastCommandFailed(row);
    if (failed !== undefined) problems.push(`${snapshot.key} (${id}): ${failed}`);
    if (holders.length !== 1)
      problems.push(`${snapshot.key} (${id}) is on [${holders.join(', ')}], not on one node`);
  }
  if (problems.length > 0)
    throw new ModelFailure(
      `after settling, the cloud differs from the model: ${problems.slice(0, 4).join('; ')}`,
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitraries and the property.

/** Options of the model-based property. */
export interface ModelOptions {
  /** Most commands per case. Default 16. */
  readonly maxCommands?: number;
  /** Bus fault probabilities in force for the whole case (a lossy bus). Default: a healthy bus. */
  readonly bus?: {
    readonly dropProbability: number;
    readonly duplicateProbability: number;
    readonly delayProbability: number;
    readonly delayMsMax: number;
  };
}

/**
 * The lossy bus of the model-based variant that proves idempotence: a fifth of the messages
 * dropped, a fifth duplicated, a fifth up to 3 s late — commands are re-sent and arrive twice.
 */
export const LOSSY_BUS = {
  dropProbability: 0.2,
  duplicateProbability: 0.2,
  delayProbability: 0.2,
  delayMsMax: 3_000,
} as const;

const small = fc.nat({ max: 7 });

/** The command arbitraries. Sizes are small so capacity never decides an outcome. */
export function modelCommandArbs(): fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] {
  const op = (arb: fc.Arbitrary<ModelOp>) => arb.map((o) => new ModelCommand(o));
  const vmCreate = op(
    fc.record({
      kind: fc.constant('vm.create' as const),
      vcpus: fc.integer({ min: 1, max: 2 }),
      memoryMb: fc.constantFrom(512, 1024, 2048),
      extraGb: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 2 }),
      start: fc.boolean(),
    }),
  );
  const volumeCreate = op(
    fc.record({
      kind: fc.constant('volume.create' as const),
      sizeGb: fc.integer({ min: 1, max: 100 }),
    }),
  );
  // Creations appear twice: later commands need something to act on.
  return [
    vmCreate,
    vmCreate,
    volumeCreate,
    volumeCreate,
    op(
      fc.record({
        kind: fc.constant('vm.action' as const),
        vm: small,
        action: fc.constantFrom('start' as const, 'stop' as const, 'restart' as const),
      }),
    ),
    op(fc.record({ kind: fc.constant('vm.delete' as const), vm: small })),
    op(fc.record({ kind: fc.constant('volume.clone' as const), snapshot: small })),
    op(fc.record({ kind: fc.constant('volume.snapshot' as const), volume: small })),
    op(fc.record({ kind: fc.constant('volume.restore' as const), snapshot: small })),
    op(fc.record({ kind: fc.constant('volume.attach' as const), volume: small, vm: small })),
    op(fc.record({ kind: fc.constant('volume.detach' as const), volume: small })),
    op(
      fc.record({
        kind: fc.constant('volume.grow' as const),
        volume: small,
        addGb: fc.integer({ min: 1, max: 50 }),
      }),
    ),
    op(fc.record({ kind: fc.constant('volume.delete' as const), volume: small })),
    op(fc.record({ kind: fc.constant('snapshot.delete' as const), snapshot: small })),
    op(fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 20_000 }) })),
    op(fc.constant({ kind: 'settle' as const })),
  ];
}

/** The topology of model-based cases: capacity never decides an outcome. */
export const MODEL_TOPOLOGY = {
  compute: { count: 2, vcpus: 32, memoryMb: 65_536 },
  storage: { count: 1, poolSizeGb: 8_192 },
  mainLoops: 2,
  accounts: ['user'],
} as const;

/**
 * Builds a simulated cloud (memory store, {@link MODEL_TOPOLOGY}) and runs `driver` inside its
 * simulation, with the safety checkers after every step, until the driver is done. Resolves with
 * the run's result, the driver's failure if it threw, and the cloud — still open, its processes
 * frozen where the run stopped, so a caller may keep using its store; close it when done.
 */
export async function withCloud(
  seed: number,
  options: ModelOptions,
  driver: (real: Real) => Promise<void>,
): Promise<{ result: RunResult; failure: string | undefined; real: Real }> {
  const sim = new Simulation({ seed, trace: { keepEntries: false } });
  let checkers: Checkers | null = null;
  const cloud = await createCloud(sim, {
    topology: MODEL_TOPOLOGY,
    store: 'memory',
    onCommit: (batch, events) => checkers?.onCommit(batch, events),
  });
  const checked = new Checkers(cloud);
  checkers = checked;
  for (const event of await cloud.store.readAll(0, 1_000_000))
    checked.onCommit({ appends: [] }, [event]);
  if (options.bus !== undefined)
    cloud.bus.setDeliveryFilter(
      createBusFaults({ ...options.bus, reorderProbability: 0 }, sim.random.fork('model-bus')),
    );
  const real = new Real(cloud, checked);
  let done = false;
  let failure: string | undefined;
  cloud.start();
  // The driver runs inside the simulation: each call awaits an answer the simulated network
  // delivers during a step, so its continuations run inside steps, in a fixed order.
  const running = (async () => {
    try {
      await driver(real);
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    } finally {
      done = true;
    }
  })();
  const result = await sim.run({
    budget: { maxSteps: 2_000_000, maxSimTimeMs: 24 * 3_600_000 },
    check: () => checked.checkSafety(),
    goal: () => done,
  });
  if (done) await running;
  return { result, failure, real };
}

/** Runs one case: the commands, then a final settle and comparison. `failure` is undefined when all held. */
export async function runModelCase(
  seed: number,
  commands: Iterable<fc.AsyncCommand<Model, Real>>,
  options: ModelOptions = {},
): Promise<{ failure: string | undefined; log: readonly string[] }> {
  const model = new Model();
  const { result, failure, real } = await withCloud(seed, options, async (real) => {
    for (const command of commands) {
      if (command.check(model)) await command.run(model, real);
    }
    await real.settle(SETTLE_BUDGET_MS);
    compareObserved(model, real);
  });
  await real.cloud.close();
  if (result.verdict !== 'ok')
    return {
      failure: `${result.verdict}: ${result.reason}${failure === undefined ? '' : ` (${failure})`}`,
      log: real.log,
    };
  return { failure, log: real.log };
}

/** Options of {@link checkModel}. */
export interface CheckModelOptions extends ModelOptions {
  readonly runs: number;
  /** fast-check's seed. */
  readonly seed: number;
  /** Replay one counterexample (with `seed`). */
  readonly path?: string;
  /** Most runs spent shrinking. Default 200. */
  readonly shrinkRuns?: number;
}

/** The result of {@link checkModel}. */
export interface ModelReport {
  /** Runs until the first failure (or all of them). */
  readonly runs: number;
  readonly shrinkRuns: number;
  readonly failure:
    | {
        readonly reason: string;
        /** Commands the shrunk case ran. */
        readonly commands: number;
        readonly listing: readonly string[];
        readonly seed: number;
        readonly path: string;
      }
    | undefined;
}

/** Runs the model-based property; shrinks the first failure within the shrink budget. */
export async function checkModel(options: CheckModelOptions): Promise<ModelReport> {
  let runs = 0;
  let shrinkRuns = 0;
  let failing: { reason: string; log: readonly string[] } | undefined;
  const budget = options.shrinkRuns ?? 200;
  const property = fc.asyncProperty(
    fc.noShrink(fc.integer({ min: 1, max: SEED_MAX })),
    fc.commands(modelCommandArbs(), { maxCommands: options.maxCommands ?? 16, size: '+1' }),
    async (seed, commands) => {
      if (failing === undefined) runs++;
      else if (shrinkRuns++ >= budget) return true;
      const outcome = await runModelCase(seed, commands, options);
      if (outcome.failure === undefined) return true;
      failing = { reason: outcome.failure, log: outcome.log };
      return false;
    },
  );
  const details = await fc.check(property, {
    seed: options.seed,
    numRuns: options.runs,
    endOnFailure: false,
    ...(options.path === undefined ? {} : { path: options.path }),
  });
  if (!details.failed || failing === undefined) {
    if (details.failed) throw asError(details.errorInstance);
    return { runs, shrinkRuns, failure: undefined };
  }
  const last = failing;
  return {
    runs,
    shrinkRuns,
    failure: {
      reason: last.reason,
      commands: last.log.length,
      listing: last.log,
      seed: details.seed,
      path: details.counterexamplePath ?? '',
    },
  };
}

/** An unknown thrown value as an Error. */
function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
