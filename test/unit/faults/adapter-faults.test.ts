// Goal: the adapter fault decorators inject exactly the four failures they promise on the
// Hypervisor and Storage ports — a failure without effect, a timeout without effect, a late start,
// and an effect whose reply is lost — at their rates, deterministically, and pass every call
// straight through once the phase heals. Method: the decorators wrap recording fake ports and a
// clock whose sleeps resolve at once but are remembered, so each outcome (did the call reach the
// port? what did the caller get? how long did it wait?) is visible.
import { timerFromSleep } from '../../../src/lib/timer.ts';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/lib/prng.ts';
import { TimeoutError } from '../../../src/ports/errors.ts';
import { HypervisorError, type Hypervisor } from '../../../src/ports/hypervisor.ts';
import type { Clock } from '../../../src/ports/runtime.ts';
import { StorageError, type Storage } from '../../../src/ports/storage.ts';
import { faultyHypervisor, faultyStorage } from '../../../src/faults/adapter-faults.ts';
import { FaultPhase, type AdapterFaults, type FaultRecord } from '../../../src/faults/plan.ts';

const NONE: AdapterFaults = {
  failProbability: 0,
  timeoutProbability: 0,
  timeoutMs: 5000,
  slowProbability: 0,
  slowMsMax: 1000,
  lostReplyProbability: 0,
};

function fakeHypervisor(calls: string[]): Hypervisor {
  const done = (call: string) => (): Promise<void> => (calls.push(call), Promise.resolve());
  return {
    capacity: () => Promise.resolve({ vcpus: 4, memoryMb: 1024 }),
    listDomains: () => Promise.resolve([]),
    getDomain: () => Promise.resolve(null),
    define: (spec) => done(`define ${spec.name}`)(),
    start: (name) => done(`start ${name}`)(),
    shutdown: (name) => done(`shutdown ${name}`)(),
    destroy: (name) => done(`destroy ${name}`)(),
    undefine: (name) => done(`undefine ${name}`)(),
    close: () => Promise.resolve(),
  };
}

function world(options: AdapterFaults, seed = 1) {
  const calls: string[] = [];
  const slept: number[] = [];
  const records: FaultRecord[] = [];
  const sleep = (ms: number): Promise<void> => (slept.push(ms), Promise.resolve());
  const clock: Clock = { nowMs: () => 0, sleep, timer: (ms) => timerFromSleep(sleep, ms) };
  const phase = new FaultPhase();
  const hypervisor = faultyHypervisor(fakeHypervisor(calls), {
    options,
    phase,
    random: new Prng(seed).fork('faults-adapters'),
    clock,
    record: (r) => records.push(r),
    who: 'agent-compute-1#1',
  });
  return { calls, slept, records, phase, hypervisor };
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof TimeoutError) return 'timeout';
    if (error instanceof HypervisorError || error instanceof StorageError) return error.reason;
    throw error;
  }
}

describe('faultyHypervisor', () => {
  it('passes everything through without faults', async () => {
    const w = world(NONE);
    expect(await outcome(w.hypervisor.start('vm-1'))).toBe('ok');
    expect(w.calls).toEqual(['start vm-1']);
    expect(w.records).toEqual([]);
  });

  it('a failure has no effect and is retryable', async () => {
    const w = world({ ...NONE, failProbability: 1 });
    const error = await w.hypervisor.start('vm-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HypervisorError);
    expect((error as HypervisorError).reason).toBe('unavailable');
    expect((error as HypervisorError).retryable).toBe(true);
    expect(w.calls).toEqual([]);
  });

  it('a timeout waits timeoutMs and has no effect', async () => {
    const w = world({ ...NONE, timeoutProbability: 1 });
    expect(
      await outcome(w.hypervisor.define({ name: 'vm-1', vcpus: 1, memoryMb: 1, disks: [] })),
    ).toBe('timeout');
    expect(w.slept).toEqual([5000]);
    expect(w.calls).toEqual([]);
  });

  it('a lost reply takes effect but the caller sees a failure', async () => {
    const w = world({ ...NONE, lostReplyProbability: 1 });
    expect(await outcome(w.hypervisor.destroy('vm-1'))).toBe('unavailable');
    expect(w.calls).toEqual(['destroy vm-1']);
    expect(w.records.map((r) => r['fault'])).toEqual(['lost-reply']);
  });

  it('a slow call starts late and then succeeds', async () => {
    const w = world({ ...NONE, slowProbability: 1 });
    expect(await outcome(w.hypervisor.start('vm-1'))).toBe('ok');
    expect(w.slept).toHaveLength(1);
    expect(w.slept[0]).toBeGreaterThanOrEqual(0);
    expect(w.slept[0]).toBeLessThanOrEqual(1000);
    expect(w.calls).toEqual(['start vm-1']);
  });

  it('mixes faults at about their rates, the same way for the same seed', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const w = world(
        { ...NONE, failProbability: 0.2, lostReplyProbability: 0.2, slowProbability: 0.5 },
        seed,
      );
      const outcomes: string[] = [];
      for (let i = 0; i < 500; i++) outcomes.push(await outcome(w.hypervisor.start(`vm-${i}`)));
      return outcomes;
    };
    const a = await run(3);
    expect(await run(3)).toEqual(a);
    expect(await run(4)).not.toEqual(a);
    const unavailable = a.filter((o) => o === 'unavailable').length / a.length;
    // P(fail) + P(no fail) * P(lost reply) = 0.2 + 0.8 * 0.2 = 0.36
    expect(unavailable).toBeGreaterThan(0.3);
    expect(unavailable).toBeLessThan(0.42);
  });

  it('passes every call through once healed, without drawing', async () => {
    const w = world({ ...NONE, failProbability: 1 });
    w.phase.heal();
    expect(await outcome(w.hypervisor.start('vm-1'))).toBe('ok');
    expect(w.records).toEqual([]);
  });
});

describe('faultyStorage', () => {
  function fakeStorage(calls: string[]): Storage {
    const info = (name: string) => ({ name, kind: 'volume' as const, sizeBytes: 1, origin: null });
    return {
      pool: () => Promise.resolve({ name: 'p', sizeBytes: 1, freeBytes: 1 }),
      list: () => Promise.resolve([]),
      get: () => Promise.resolve(null),
      createVolume: (name) => (calls.push(`create ${name}`), Promise.resolve(info(name))),
      resizeVolume: (name) => (calls.push(`resize ${name}`), Promise.resolve(info(name))),
      snapshot: (v, s) => (calls.push(`snapshot ${v}@${s}`), Promise.resolve(info(`${v}@${s}`))),
      clone: (s, t) => (calls.push(`clone ${s} ${t}`), Promise.resolve(info(t))),
      rollback: (s) => (calls.push(`rollback ${s}`), Promise.resolve()),
      destroy: (name) => (calls.push(`destroy ${name}`), Promise.resolve()),
      diskPath: (v) => `/p/${v}/disk.raw`,
      close: () => Promise.resolve(),
    };
  }

  it('fails with StorageError unavailable, loses replies after the effect, and leaves diskPath alone', async () => {
    const calls: string[] = [];
    const phase = new FaultPhase();
    const make = (options: AdapterFaults) =>
      faultyStorage(fakeStorage(calls), {
        options,
        phase,
        random: new Prng(1),
        clock: {
          nowMs: () => 0,
          sleep: () => Promise.resolve(),
          timer: (ms) => timerFromSleep(() => Promise.resolve(), ms),
        },
        record: () => undefined,
        who: 'agent-storage-1#1',
      });
    const failing = make({ ...NONE, failProbability: 1 });
    expect(await outcome(failing.createVolume('vol-1', 10))).toBe('unavailable');
    expect(failing.diskPath('vol-1')).toBe('/p/vol-1/disk.raw');
    expect(calls).toEqual([]);
    const losing = make({ ...NONE, lostReplyProbability: 1 });
    expect(await outcome(losing.clone('img@base', 'vol-2'))).toBe('unavailable');
    expect(calls).toEqual(['clone img@base vol-2']);
  });
});
