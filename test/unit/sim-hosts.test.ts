// Goal: host-level behaviour of the simulated compute host and storage node that the port contracts
// cannot express — latencies, replies lost with a crashed caller, host crash, reboot and hang, guest
// crash and pause, capacity accounting — and that one seed always gives the same latencies and
// outcomes. Method: small worlds with one caller process; `settle` steps the simulation until an
// awaited operation settles, `sleep` lets virtual time pass, and the hosts' synchronous inspection
// (`domains()`, `datasets()`, `usage()`) shows world state the caller cannot see.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/lib/prng.ts';
import { HypervisorError, type Hypervisor } from '../../src/ports/hypervisor.ts';
import { StorageError, type Storage } from '../../src/ports/storage.ts';
import { SimComputeHost } from '../../src/sim/hosts/compute-host.ts';
import {
  HYPERVISOR_LATENCY,
  STORAGE_LATENCY,
  drawLatencyMs,
  fixedLatency,
} from '../../src/sim/hosts/latency.ts';
import { SimStorageNode } from '../../src/sim/hosts/storage-node.ts';
import type { Incarnation } from '../../src/sim/process.ts';
import { quiesce } from '../../src/sim/quiesce.ts';
import { Simulation } from '../../src/sim/simulation.ts';

const STEPS_MAX = 100_000;
/** Longer than any guest power-off (capped at 60 s). */
const GUEST_SHUTDOWN_MAX_MS = HYPERVISOR_LATENCY['guest-shutdown'].maxMs + 1;

function createWorld(seed = 1) {
  const sim = new Simulation({ seed, trace: { keepEntries: true }, traceEvents: false });
  const proc = sim.spawn('caller', () => new Promise<void>(() => {}));
  const caller = proc.start();
  const failed = (): string | undefined =>
    sim.trace.entries().lines.find((line) => line.includes('"sim.crash"'));
  const settle = async <T>(promise: Promise<T>): Promise<T> => {
    let settled = false;
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    await quiesce();
    for (let steps = 0; !settled; steps++) {
      if (steps >= STEPS_MAX) throw new Error(`not settled after ${steps} steps`);
      if (!(await sim.scheduler.step())) throw new Error('the simulation ran dry before settling');
    }
    expect(failed()).toBeUndefined();
    return promise;
  };
  const sleep = (delayMs: number): Promise<void> =>
    settle(
      new Promise<void>((resolve) => sim.schedule({ delayMs, label: 'test.sleep', run: resolve })),
    );
  /** Runs every queued event. */
  const drain = async (): Promise<void> => {
    for (let steps = 0; await sim.scheduler.step(); steps++) {
      if (steps >= STEPS_MAX) throw new Error('the simulation does not drain');
    }
    expect(failed()).toBeUndefined();
  };
  const now = (): number => sim.scheduler.now;
  return { sim, proc, caller, settle, sleep, drain, now };
}

function computeWorld(seed = 1, memoryMb = 1024) {
  const world = createWorld(seed);
  const host = new SimComputeHost({ sim: world.sim, id: 'c1', capacity: { vcpus: 8, memoryMb } });
  const hv = host.hypervisorFor(world.caller);
  const spec = (name: string, memory = 128) => ({ name, vcpus: 1, memoryMb: memory, disks: [] });
  const running = async (name: string, memory = 128): Promise<void> => {
    await world.settle(hv.define(spec(name, memory)));
    await world.settle(hv.start(name));
  };
  const stateOf = (name: string) => host.domains().find((d) => d.name === name)?.state;
  return { ...world, host, hv, spec, running, stateOf };
}

/** The error a promise rejects with (after settling it), or undefined. */
async function failure(settle: <T>(p: Promise<T>) => Promise<T>, p: Promise<unknown>) {
  return settle(p).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('latency distributions', () => {
  it('draws log-normal latencies around the median and never above the cap', () => {
    const random = new Prng(7).fork('latency');
    const spec = HYPERVISOR_LATENCY.define;
    const draws = Array.from({ length: 2001 }, () => drawLatencyMs(random, spec)).sort(
      (a, b) => a - b,
    );
    const median = draws[1000]!;
    expect(median).toBeGreaterThan(spec.medianMs * 0.9);
    expect(median).toBeLessThan(spec.medianMs * 1.1);
    expect(draws[0]!).toBeGreaterThan(0);
    expect(draws[2000]!).toBeLessThanOrEqual(spec.maxMs);
    // The spread is real: not every draw is the median.
    expect(draws[1900]! / draws[100]!).toBeGreaterThan(1.5);
  });

  it('a fixed latency is constant and consumes the same draws as a random one', () => {
    const a = new Prng(3).fork('x');
    const b = new Prng(3).fork('x');
    expect(drawLatencyMs(a, fixedLatency(25))).toBe(25);
    drawLatencyMs(b, STORAGE_LATENCY.create);
    expect(a.nextUint32()).toBe(b.nextUint32());
  });
});

describe('simulated compute host', () => {
  it('an operation takes effect in a world event after its latency', async () => {
    const w = computeWorld();
    const pending = w.hv.define(w.spec('vm-a'));
    expect(w.host.domains()).toEqual([]);
    await w.settle(pending);
    expect(w.now()).toBeGreaterThan(0);
    expect(w.stateOf('vm-a')).toBe('shutoff');
    const before = w.now();
    await w.settle(w.hv.start('vm-a'));
    // Starting takes a qemu launch: much longer than a read.
    expect(w.now() - before).toBeGreaterThan(HYPERVISOR_LATENCY.start.medianMs / 10);
  });

  it('a caller that crashes mid-operation never sees the reply, but the effect happens', async () => {
    const w = computeWorld();
    let replied = false;
    void w.hv.define(w.spec('vm-a')).then(() => (replied = true));
    w.proc.crash();
    await w.drain();
    expect(replied).toBe(false);
    expect(w.stateOf('vm-a')).toBe('shutoff');
  });

  it('a dead caller cannot issue operations', async () => {
    const w = computeWorld();
    w.proc.crash();
    void w.hv.define(w.spec('vm-a'));
    await w.drain();
    expect(w.host.domains()).toEqual([]);
  });

  it('a paused caller gets its reply when it resumes; the effect does not wait', async () => {
    const w = computeWorld();
    let replied = false;
    void w.hv.define(w.spec('vm-a')).then(() => (replied = true));
    w.proc.pause();
    await w.drain();
    expect(w.stateOf('vm-a')).toBe('shutoff');
    expect(replied).toBe(false);
    w.proc.resume();
    await quiesce();
    expect(replied).toBe(true);
  });

  it('crash: every domain dies, the host is down and operations fail unavailable without effect', async () => {
    const w = computeWorld();
    await w.running('vm-run');
    await w.running('vm-transient');
    await w.settle(w.hv.undefine('vm-transient'));
    await w.settle(w.hv.define(w.spec('vm-off')));
    await w.running('vm-crashed');
    w.host.crashDomain('vm-crashed');
    const inFlight = w.hv.define(w.spec('vm-new'));
    w.host.crash();
    expect(w.host.status).toBe('down');
    const error = await failure(w.settle, inFlight);
    expect(error).toBeInstanceOf(HypervisorError);
    expect(error).toMatchObject({ reason: 'unavailable', retryable: true });
    const later = await failure(w.settle, w.hv.listDomains());
    expect(later).toMatchObject({ reason: 'unavailable', retryable: true });
    expect(w.host.domains().map((d) => [d.name, d.state, d.persistent])).toEqual([
      ['vm-crashed', 'shutoff', true],
      ['vm-off', 'shutoff', true],
      ['vm-run', 'shutoff', true],
    ]);
    expect(w.host.usage()).toEqual({ vcpus: 0, memoryMb: 0 });
    w.host.boot();
    expect(w.host.status).toBe('up');
    expect((await w.settle(w.hv.listDomains())).map((d) => d.state)).toEqual([
      'shutoff',
      'shutoff',
      'shutoff',
    ]);
    await w.settle(w.hv.start('vm-run'));
    expect(w.stateOf('vm-run')).toBe('running');
  });

  it('reboot: down for the delay, then back with persistent domains shut off', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    const t0 = w.now();
    w.host.reboot(5000);
    expect(w.host.status).toBe('down');
    expect(await failure(w.settle, w.hv.getDomain('vm-a'))).toMatchObject({
      reason: 'unavailable',
    });
    await w.sleep(t0 + 5000 - w.now());
    expect(w.host.status).toBe('up');
    expect(await w.settle(w.hv.getDomain('vm-a'))).toMatchObject({ state: 'shutoff' });
    // A crash cancels a pending boot: the host stays down until told.
    w.host.reboot(1000);
    w.host.crash();
    await w.sleep(2000);
    expect(w.host.status).toBe('down');
  });

  it('an operation issued before a reboot fails even if its reply is due after the boot', async () => {
    const w = computeWorld(1);
    await w.settle(w.hv.define(w.spec('vm-a')));
    const start = w.hv.start('vm-a');
    w.host.reboot(0.001);
    expect(await failure(w.settle, start)).toMatchObject({ reason: 'unavailable' });
    expect(w.host.status).toBe('up');
    expect(w.stateOf('vm-a')).toBe('shutoff');
  });

  it('hang: operations complete late while guests keep running and powering off', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    await w.settle(w.hv.shutdown('vm-a'));
    const hangMs = 2 * GUEST_SHUTDOWN_MAX_MS;
    const hangEnd = w.now() + hangMs;
    w.host.hang(hangMs);
    const get = w.hv.getDomain('vm-a');
    await w.sleep(GUEST_SHUTDOWN_MAX_MS);
    expect(w.host.hung).toBe(true);
    expect(w.host.status).toBe('up');
    expect(w.stateOf('vm-a')).toBe('shutoff');
    expect(await w.settle(get)).toMatchObject({ state: 'shutoff' });
    expect(w.now()).toBeGreaterThanOrEqual(hangEnd);
    expect(w.host.hung).toBe(false);
  });

  it('memory: active domains count, paused ones too; a start that fits exactly succeeds', async () => {
    const w = computeWorld(1, 1024);
    await w.running('vm-a', 512);
    await w.running('vm-b', 512);
    expect(w.host.usage()).toEqual({ vcpus: 2, memoryMb: 1024 });
    await w.settle(w.hv.define(w.spec('vm-c', 1)));
    expect(await failure(w.settle, w.hv.start('vm-c'))).toMatchObject({
      reason: 'out-of-memory',
    });
    w.host.pauseDomain('vm-a');
    expect(await failure(w.settle, w.hv.start('vm-c'))).toMatchObject({
      reason: 'out-of-memory',
    });
    w.host.crashDomain('vm-a');
    expect(w.host.usage()).toEqual({ vcpus: 1, memoryMb: 512 });
    await w.settle(w.hv.start('vm-c'));
    expect(w.stateOf('vm-c')).toBe('running');
  });

  it('a guest powers off a while after shutdown; a stale power-off never stops a later run', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    await w.settle(w.hv.shutdown('vm-a'));
    expect(w.stateOf('vm-a')).toBe('running');
    await w.sleep(GUEST_SHUTDOWN_MAX_MS);
    expect(w.stateOf('vm-a')).toBe('shutoff');

    await w.settle(w.hv.start('vm-a'));
    await w.settle(w.hv.shutdown('vm-a'));
    await w.settle(w.hv.destroy('vm-a'));
    await w.settle(w.hv.start('vm-a'));
    await w.sleep(GUEST_SHUTDOWN_MAX_MS);
    expect(w.stateOf('vm-a')).toBe('running');
  });

  it('a guest crash leaves the domain crashed: inactive, startable, not destroyable', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    w.host.crashDomain('vm-a');
    expect(await w.settle(w.hv.getDomain('vm-a'))).toMatchObject({ state: 'crashed' });
    expect(await failure(w.settle, w.hv.destroy('vm-a'))).toMatchObject({ reason: 'not-running' });
    expect(await failure(w.settle, w.hv.shutdown('vm-a'))).toMatchObject({
      reason: 'not-running',
    });
    await w.settle(w.hv.start('vm-a'));
    expect(w.stateOf('vm-a')).toBe('running');
    // A transient domain that crashes is gone.
    await w.settle(w.hv.undefine('vm-a'));
    w.host.crashDomain('vm-a');
    expect(w.host.domains()).toEqual([]);
  });

  it('a paused guest is active: start is already-running, shutdown not-running, destroy works', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    w.host.pauseDomain('vm-a');
    expect(await failure(w.settle, w.hv.start('vm-a'))).toMatchObject({
      reason: 'already-running',
    });
    expect(await failure(w.settle, w.hv.shutdown('vm-a'))).toMatchObject({
      reason: 'not-running',
    });
    expect(await failure(w.settle, w.hv.undefine('vm-a'))).toBeUndefined();
    expect(w.host.domains()).toMatchObject([{ name: 'vm-a', state: 'paused', persistent: false }]);
    w.host.resumeDomain('vm-a');
    expect(w.stateOf('vm-a')).toBe('running');
    await w.settle(w.hv.destroy('vm-a'));
    expect(w.host.domains()).toEqual([]);
  });

  it('a power-off request is lost if the guest is paused when it would act', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    await w.settle(w.hv.shutdown('vm-a'));
    w.host.pauseDomain('vm-a');
    await w.sleep(GUEST_SHUTDOWN_MAX_MS);
    w.host.resumeDomain('vm-a');
    await w.sleep(GUEST_SHUTDOWN_MAX_MS);
    expect(w.stateOf('vm-a')).toBe('running');
  });

  it('a redefinition in flight when the domain stops still lands', async () => {
    const w = computeWorld();
    await w.running('vm-a');
    // Issued together: whichever completes first, the new definition survives.
    const define = w.hv.define({ ...w.spec('vm-a'), vcpus: 4 });
    const destroy = w.hv.destroy('vm-a');
    await w.settle(Promise.all([define, destroy]));
    expect(w.host.domains()).toMatchObject([{ name: 'vm-a', state: 'shutoff', vcpus: 4 }]);
  });
});

function storageWorld(seed = 1) {
  const world = createWorld(seed);
  const node = new SimStorageNode({ sim: world.sim, id: 's1', pool: 'tank', sizeBytes: 1000 });
  const st = node.storageFor(world.caller);
  return { ...world, node, st };
}

describe('simulated storage node', () => {
  it('crash: datasets persist, operations fail unavailable without effect until boot', async () => {
    const w = storageWorld();
    await w.settle(w.st.createVolume('vol-a', 100));
    await w.settle(w.st.snapshot('vol-a', 's1'));
    const before = w.node.datasets();
    const inFlight = w.st.createVolume('vol-b', 100);
    w.node.crash();
    const error = await failure(w.settle, inFlight);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ reason: 'unavailable', retryable: true });
    expect(await failure(w.settle, w.st.list())).toMatchObject({ reason: 'unavailable' });
    expect(w.node.datasets()).toEqual(before);
    w.node.reboot(100);
    await w.sleep(100);
    expect(w.node.status).toBe('up');
    expect(await w.settle(w.st.list())).toEqual(
      before.map(({ name, kind, sizeBytes, origin }) => ({ name, kind, sizeBytes, origin })),
    );
    await w.settle(w.st.createVolume('vol-b', 100));
  });

  it('hang: operations complete after the hang', async () => {
    const w = storageWorld();
    w.node.hang(10_000);
    const create = w.st.createVolume('vol-a', 100);
    await w.settle(create);
    expect(w.now()).toBeGreaterThanOrEqual(10_000);
    expect(w.node.hung).toBe(false);
  });

  it('inspection shows reservations; rollback restores the size but not the reservation', async () => {
    const w = storageWorld();
    await w.settle(w.st.createVolume('vol-a', 100));
    await w.settle(w.st.snapshot('vol-a', 's1'));
    await w.settle(w.st.clone('vol-a@s1', 'vol-b'));
    expect(w.node.freeBytes).toBe(800);
    await w.settle(w.st.resizeVolume('vol-a', 300));
    await w.settle(w.st.rollback('vol-a@s1'));
    expect(w.node.datasets()).toEqual([
      { name: 'tank/vol-a', kind: 'volume', sizeBytes: 100, origin: null, reservedBytes: 300 },
      { name: 'tank/vol-a@s1', kind: 'snapshot', sizeBytes: 100, origin: null, reservedBytes: 0 },
      {
        name: 'tank/vol-b',
        kind: 'volume',
        sizeBytes: 100,
        origin: 'tank/vol-a@s1',
        reservedBytes: 100,
      },
    ]);
    expect(w.node.freeBytes).toBe(600);
    // Growing again sets the reservation to the new size.
    await w.settle(w.st.resizeVolume('vol-a', 200));
    expect(w.node.freeBytes).toBe(700);
    // The whole pool can be reserved, not a byte more.
    await w.settle(w.st.createVolume('vol-c', 700));
    expect(await failure(w.settle, w.st.createVolume('vol-d', 1))).toMatchObject({
      reason: 'no-space',
    });
  });
});

/** A random workload on a compute host and a storage node with random faults; returns its log. */
async function workload(seed: number): Promise<{ log: string[]; hash: string }> {
  const sim = new Simulation({ seed });
  const host = new SimComputeHost({ sim, id: 'c1', capacity: { vcpus: 4, memoryMb: 512 } });
  const node = new SimStorageNode({ sim, id: 's1', pool: 'tank', sizeBytes: 1000 });
  const faults = sim.random.fork('faults');
  for (let i = 0; i < 4; i++) {
    const at = faults.int(0, 20_000);
    const kind = faults.int(0, 3);
    sim.schedule({
      delayMs: at,
      label: 'test.fault',
      run: () => {
        if (kind === 0) host.reboot(faults.int(100, 3000));
        else if (kind === 1) host.hang(faults.int(100, 3000));
        else if (kind === 2) node.reboot(faults.int(100, 3000));
        else host.crashDomain(`d${faults.int(0, 2)}`);
      },
    });
  }
  const log: string[] = [];
  const main = async (inc: Incarnation): Promise<void> => {
    const hv: Hypervisor = host.hypervisorFor(inc);
    const st: Storage = node.storageFor(inc);
    const r = inc.runtime.random;
    for (let i = 0; i < 60; i++) {
      const d = `d${r.int(0, 2)}`;
      const v = `v${r.int(0, 2)}`;
      const ops: (() => Promise<unknown>)[] = [
        () => hv.define({ name: d, vcpus: 1, memoryMb: 128 * r.int(1, 3), disks: [] }),
        () => hv.start(d),
        () => hv.shutdown(d),
        () => hv.destroy(d),
        () => hv.undefine(d),
        () => hv.listDomains(),
        () => st.createVolume(v, 100 * r.int(1, 4)),
        () => st.snapshot(v, `s${r.int(0, 1)}`),
        () => st.clone(`${v}@s${r.int(0, 1)}`, `v${r.int(0, 2)}`),
        () => st.destroy(r.chance(0.5) ? v : `${v}@s${r.int(0, 1)}`),
        () => st.rollback(`${v}@s${r.int(0, 1)}`),
      ];
      const pick = r.int(0, ops.length - 1);
      const outcome = await ops[pick]!().then(
        () => 'ok',
        (e: unknown) => (e as { code: string }).code,
      );
      log.push(`${inc.runtime.clock.nowMs()} ${pick} ${d} ${v} ${outcome}`);
      await inc.sleep(r.exponential(200));
    }
  };
  sim.spawn('workload', main).start();
  const result = await sim.run({ budget: { maxSteps: 100_000, maxSimTimeMs: 1_000_000 } });
  expect(result.verdict).toBe('ok');
  return { log, hash: result.traceHash };
}

describe('determinism', () => {
  it('the same seed gives the same latencies, outcomes and trace', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), async (seed) => {
        const a = await workload(seed);
        const b = await workload(seed);
        expect(a.log).toHaveLength(60);
        expect(b.log).toEqual(a.log);
        expect(b.hash).toBe(a.hash);
      }),
      { numRuns: 8 },
    );
  });

  it('different seeds give different latencies', async () => {
    const a = await workload(1);
    const b = await workload(2);
    expect(b.log).not.toEqual(a.log);
    // The workload reaches both successes and failures, so the comparison has something to see.
    expect(a.log.some((l) => l.endsWith(' ok'))).toBe(true);
    expect(a.log.some((l) => !l.endsWith(' ok'))).toBe(true);
  });
});
