/**
 * Random workloads for the fuzzer and the property suites: API calls over simulated time — VMs and
 * volumes created, started, stopped, restarted, deleted, snapshotted, restored, cloned, attached,
 * detached and grown — as fast-check arbitraries that shrink well.
 *
 * A workload is generated as abstract operations whose references to earlier resources are plain
 * numbers ("the 3rd VM created so far", modulo how many exist), then compiled to the scenario's
 * workload steps with `save` names and `{name}` placeholders. Compilation is total: removing any
 * operation while shrinking still compiles to a valid workload (references re-resolve among what is
 * left; an operation with nothing to refer to is dropped), so fast-check can shrink freely.
 */
import fc from 'fast-check';
import { IMAGES } from '../model/resources.ts';

/** A reference to an earlier resource of one kind: resolved modulo how many exist at that point. */
type Ref = number;

/** One abstract API call. `gapMs` is the virtual time since the previous operation. */
export type WorkloadOp =
  | {
      readonly kind: 'vm.create';
      readonly gapMs: number;
      readonly vcpus: number;
      readonly memoryMb: number;
      readonly image: number;
      /** Sizes of extra volumes created with (and attached to) the VM, GB. */
      readonly extraGb: readonly number[];
      readonly start: boolean;
    }
  | {
      readonly kind: 'vm.action';
      readonly gapMs: number;
      readonly vm: Ref;
      readonly action: 'start' | 'stop' | 'restart';
    }
  | { readonly kind: 'vm.delete'; readonly gapMs: number; readonly vm: Ref }
  | { readonly kind: 'vm.get'; readonly gapMs: number; readonly vm: Ref }
  | { readonly kind: 'volume.create'; readonly gapMs: number; readonly sizeGb: number }
  | { readonly kind: 'volume.clone'; readonly gapMs: number; readonly snapshot: Ref }
  | { readonly kind: 'volume.snapshot'; readonly gapMs: number; readonly volume: Ref }
  | { readonly kind: 'volume.restore'; readonly gapMs: number; readonly snapshot: Ref }
  | {
      readonly kind: 'volume.attach';
      readonly gapMs: number;
      readonly volume: Ref;
      readonly vm: Ref;
    }
  | { readonly kind: 'volume.detach'; readonly gapMs: number; readonly volume: Ref }
  | {
      readonly kind: 'volume.grow';
      readonly gapMs: number;
      readonly volume: Ref;
      readonly addGb: number;
    }
  | { readonly kind: 'volume.delete'; readonly gapMs: number; readonly volume: Ref }
  | { readonly kind: 'snapshot.delete'; readonly gapMs: number; readonly snapshot: Ref };

/** One workload step as scenario data (the YAML shape of `workload[]` in scenarios/README.md). */
export interface WorkloadStepData {
  at: number;
  request: string;
  body?: Record<string, unknown>;
  save?: string;
  expectStatus?: number;
}

/** Options of {@link workloadArb}. */
export interface WorkloadArbOptions {
  /** Most operations. Default 10. */
  readonly maxOps?: number;
  /** Longest gap between two operations, ms. Default 20 000. */
  readonly maxGapMs?: number;
  /**
   * A status every create must get (`expectStatus` of the create steps). Unset by default: under
   * faults a create may fail. Tests set one the API never gives to force a failure.
   */
  readonly createStatus?: number;
}

/**
 * Gaps between calls: often none (concurrent calls race in the API and the main loop), often a
 * few hundred ms (a call lands while the previous one is being reconciled), sometimes long
 * (the previous one has settled).
 */
function gapArb(maxGapMs: number): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: fc.constant(0), weight: 2 },
    { arbitrary: fc.integer({ min: 0, max: Math.min(2_000, maxGapMs) }), weight: 3 },
    { arbitrary: fc.integer({ min: 0, max: maxGapMs }), weight: 3 },
  );
}

const refArb: fc.Arbitrary<Ref> = fc.nat({ max: 7 });

/** Arbitrary of one abstract operation. Creations are weighted up so later calls have targets. */
export function opArb(options: WorkloadArbOptions = {}): fc.Arbitrary<WorkloadOp> {
  const gap = gapArb(options.maxGapMs ?? 20_000);
  const vmCreate = fc.record({
    kind: fc.constant('vm.create' as const),
    gapMs: gap,
    vcpus: fc.integer({ min: 1, max: 4 }),
    memoryMb: fc.constantFrom(512, 1024, 2048, 4096),
    image: fc.nat({ max: IMAGES.length - 1 }),
    extraGb: fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 2 }),
    start: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, fc.constant(false)),
  });
  return fc.oneof(
    { arbitrary: vmCreate, weight: 6 },
    {
      arbitrary: fc.record({
        kind: fc.constant('vm.action' as const),
        gapMs: gap,
        vm: refArb,
        action: fc.constantFrom('start' as const, 'stop' as const, 'restart' as const),
      }),
      weight: 6,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('vm.delete' as const), gapMs: gap, vm: refArb }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('vm.get' as const), gapMs: gap, vm: refArb }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.create' as const),
        gapMs: gap,
        sizeGb: fc.integer({ min: 1, max: 200 }),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.clone' as const),
        gapMs: gap,
        snapshot: refArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.snapshot' as const),
        gapMs: gap,
        volume: refArb,
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.restore' as const),
        gapMs: gap,
        snapshot: refArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.attach' as const),
        gapMs: gap,
        volume: refArb,
        vm: refArb,
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.detach' as const),
        gapMs: gap,
        volume: refArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.grow' as const),
        gapMs: gap,
        volume: refArb,
        addGb: fc.integer({ min: 1, max: 50 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('volume.delete' as const),
        gapMs: gap,
        volume: refArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('snapshot.delete' as const),
        gapMs: gap,
        snapshot: refArb,
      }),
      weight: 2,
    },
  );
}

/** Arbitrary of a workload: up to `maxOps` operations. Shrinks toward fewer, simpler calls. */
export function workloadArb(options: WorkloadArbOptions = {}): fc.Arbitrary<WorkloadOp[]> {
  return fc.array(opArb(options), { maxLength: options.maxOps ?? 10 });
}

/** A compiled workload: the steps and, per compiled step, the index of its operation. */
export interface CompiledWorkload {
  readonly steps: WorkloadStepData[];
  /** Virtual time of each operation (compiled or dropped), ms: anchors for fault times. */
  readonly opTimesMs: readonly number[];
}

/** What the compiler knows of a saved volume: its save name, size and (for a snapshot) source. */
interface VolumeSlot {
  readonly save: string;
  sizeGb: number;
}
interface SnapshotSlot {
  readonly save: string;
  readonly volume: VolumeSlot;
}

function pick<T>(slots: readonly T[], ref: Ref): T | undefined {
  return slots.length === 0 ? undefined : slots[ref % slots.length];
}

/**
 * Compiles abstract operations to workload steps, starting at `startMs` (the first call happens
 * at `startMs + ops[0].gapMs`). Names are numbered in creation order so they stay unique.
 */
export function compileWorkload(
  ops: readonly WorkloadOp[],
  options: { readonly startMs?: number; readonly createStatus?: number } = {},
): CompiledWorkload {
  const startMs = options.startMs ?? 1_000;
  const expect = options.createStatus === undefined ? {} : { expectStatus: options.createStatus };
  const steps: WorkloadStepData[] = [];
  const opTimesMs: number[] = [];
  const vms: string[] = [];
  const volumes: VolumeSlot[] = [];
  const snapshots: SnapshotSlot[] = [];
  let atMs = startMs;
  const step = (request: string, extra: Omit<WorkloadStepData, 'at' | 'request'> = {}): void => {
    steps.push({ at: atMs, request, ...extra });
  };
  for (const op of ops) {
    atMs += op.gapMs;
    opTimesMs.push(atMs);
    switch (op.kind) {
      case 'vm.create': {
        const n = vms.length + 1;
        const image = IMAGES[op.image % IMAGES.length];
        const save = `vm${n}`;
        vms.push(save);
        step('POST /v1/virtualmachines', {
          body: {
            name: `vm-${n}`,
            imageId: image?.id ?? 'img-00000001',
            vcpus: op.vcpus,
            memoryMb: op.memoryMb,
            ...(op.extraGb.length === 0
              ? {}
              : {
                  volumes: op.extraGb.map((sizeGb, i) => ({ name: `vm-${n}-x${i + 1}`, sizeGb })),
                }),
            ...(op.start ? {} : { startOnCreate: false }),
          },
          save,
          ...expect,
        });
        break;
      }
      case 'vm.action': {
        const vm = pick(vms, op.vm);
        if (vm !== undefined) step(`POST /v1/virtualmachines/{${vm}}?action=${op.action}`);
        break;
      }
      case 'vm.delete': {
        const vm = pick(vms, op.vm);
        if (vm !== undefined) step(`DELETE /v1/virtualmachines/{${vm}}`);
        break;
      }
      case 'vm.get': {
        const vm = pick(vms, op.vm);
        if (vm !== undefined) step(`GET /v1/virtualmachines/{${vm}}`);
        break;
      }
      case 'volume.create': {
        const slot: VolumeSlot = { save: `vol${volumes.length + 1}`, sizeGb: op.sizeGb };
        volumes.push(slot);
        step('POST /v1/volumes', {
          body: { name: `vol-${volumes.length}`, sizeGb: op.sizeGb },
          save: slot.save,
          ...expect,
        });
        break;
      }
      case 'volume.clone': {
        const snapshot = pick(snapshots, op.snapshot);
        if (snapshot === undefined) break;
        const slot: VolumeSlot = {
          save: `vol${volumes.length + 1}`,
          sizeGb: snapshot.volume.sizeGb,
        };
        volumes.push(slot);
        step('POST /v1/volumes', {
          body: { name: `vol-${volumes.length}`, sourceSnapshotId: `{${snapshot.save}}` },
          save: slot.save,
        });
        break;
      }
      case 'volume.snapshot': {
        const volume = pick(volumes, op.volume);
        if (volume === undefined) break;
        const slot: SnapshotSlot = { save: `snap${snapshots.length + 1}`, volume };
        snapshots.push(slot);
        step(`POST /v1/volumes/{${volume.save}}?action=snapshot`, {
          body: { name: `snap-${snapshots.length}` },
          save: slot.save,
        });
        break;
      }
      case 'volume.restore': {
        const snapshot = pick(snapshots, op.snapshot);
        if (snapshot !== undefined)
          step(`POST /v1/volumes/{${snapshot.volume.save}}?action=restore`, {
            body: { snapshotId: `{${snapshot.save}}` },
          });
        break;
      }
      case 'volume.attach': {
        const volume = pick(volumes, op.volume);
        const vm = pick(vms, op.vm);
        if (volume !== undefined && vm !== undefined)
          step(`POST /v1/volumes/{${volume.save}}?action=attach`, {
            body: { virtualMachineId: `{${vm}}` },
          });
        break;
      }
      case 'volume.detach': {
        const volume = pick(volumes, op.volume);
        if (volume !== undefined) step(`POST /v1/volumes/{${volume.save}}?action=detach`);
        break;
      }
      case 'volume.grow': {
        const volume = pick(volumes, op.volume);
        if (volume === undefined) break;
        volume.sizeGb += op.addGb;
        step(`POST /v1/volumes/{${volume.save}}?action=grow`, { body: { sizeGb: volume.sizeGb } });
        break;
      }
      case 'volume.delete': {
        const volume = pick(volumes, op.volume);
        if (volume !== undefined) step(`DELETE /v1/volumes/{${volume.save}}`);
        break;
      }
      case 'snapshot.delete': {
        const snapshot = pick(snapshots, op.snapshot);
        if (snapshot !== undefined) step(`DELETE /v1/snapshots/{${snapshot.save}}`);
        break;
      }
    }
  }
  return { steps, opTimesMs };
}
