// Goal: the small pieces the agents are built from — the per-resource queue (serial per key,
// concurrent across keys, newest pending command wins, housekeeping never displaces a command,
// bounded), the coalescing inventory pump, the bounded memory of applied commands, bounded waits
// and error reasons. Method: direct calls with hand-driven promises; the timeout runs on a tiny
// fake clock whose sleeps the test releases.
import { timerFromSleep } from '../../../src/lib/timer.ts';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/lib/assert.ts';
import { HypervisorError } from '../../../src/ports/hypervisor.ts';
import { TimeoutError, UnavailableError } from '../../../src/ports/errors.ts';
import { StorageError } from '../../../src/ports/storage.ts';
import type { Clock } from '../../../src/ports/runtime.ts';
import {
  errorReason,
  FenceMemory,
  InventoryPump,
  RecentCommands,
  withTimeout,
} from '../../../src/control/agents/agent-kit.ts';
import { KeyedQueue } from '../../../src/control/agents/keyed-queue.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('KeyedQueue', () => {
  it('runs one item per key at a time, keeps only the newest pending command, and frees the key', async () => {
    const errors: unknown[] = [];
    const queue = new KeyedQueue({ onError: (e) => errors.push(e) });
    const log: string[] = [];
    const gate = deferred();
    const replaced: string[] = [];
    const item = (name: string, wait?: Promise<void>) => ({
      kind: 'command' as const,
      run: async () => {
        log.push(`start ${name}`);
        if (wait !== undefined) await wait;
        log.push(`end ${name}`);
      },
      onReplaced: () => replaced.push(name),
    });
    expect(queue.enqueue('a', item('a1', gate.promise))).toBe('started');
    expect(queue.enqueue('a', item('a2'))).toBe('queued');
    expect(queue.enqueue('a', item('a3'))).toBe('replaced-pending');
    expect(queue.enqueue('a', { kind: 'housekeeping', run: async () => {} })).toBe('skipped');
    expect(queue.enqueue('b', item('b1'))).toBe('started');
    await flush();
    expect(log).toEqual(['start a1', 'start b1', 'end b1']);
    expect(queue.busy('a')).toBe(true);
    expect(queue.busy('b')).toBe(false);
    gate.resolve();
    await flush();
    expect(log).toEqual(['start a1', 'start b1', 'end b1', 'end a1', 'start a3', 'end a3']);
    expect(replaced).toEqual(['a2']);
    expect(queue.size).toBe(0);
    expect(errors).toEqual([]);
  });

  it('hands a throwing item to onError and goes on; refuses new keys beyond its bound', async () => {
    const errors: unknown[] = [];
    const queue = new KeyedQueue({ onError: (e) => errors.push(e), resourcesMax: 1 });
    const gate = deferred();
    queue.enqueue('a', {
      kind: 'command',
      run: async () => {
        await gate.promise;
        throw new Error('boom');
      },
    });
    expect(queue.enqueue('b', { kind: 'command', run: async () => {} })).toBe('full');
    gate.resolve();
    await flush();
    expect(errors).toHaveLength(1);
    expect(queue.enqueue('b', { kind: 'command', run: async () => {} })).toBe('started');
  });
});

describe('InventoryPump', () => {
  it('coalesces requests made while one runs into exactly one more run', async () => {
    const gates: (() => void)[] = [];
    let runs = 0;
    const pump = new InventoryPump(
      () =>
        new Promise<void>((resolve) => {
          runs++;
          gates.push(resolve);
        }),
    );
    const first = pump.request();
    void pump.request();
    void pump.request();
    void pump.request();
    expect(runs).toBe(1);
    gates.shift()!();
    await flush();
    expect(runs).toBe(2);
    gates.shift()!();
    await first;
    expect(runs).toBe(2);
  });
});

describe('small memories', () => {
  it('FenceMemory keeps the newest token', () => {
    const fences = new FenceMemory();
    fences.see('vm-1', 4);
    fences.see('vm-1', 2);
    expect(fences.get('vm-1')).toBe(4);
    expect(fences.get('vm-2')).toBe(0);
  });

  it('RecentCommands forgets the oldest beyond its capacity', () => {
    const recent = new RecentCommands(2);
    recent.remember('a', { ok: true, error: null });
    recent.remember('b', { ok: true, error: null });
    recent.remember('c', { ok: false, error: 'busy' });
    expect(recent.get('a')).toBeUndefined();
    expect(recent.get('c')).toEqual({ ok: false, error: 'busy' });
  });
});

describe('errors and waits', () => {
  it('reduces errors to stable reasons and rethrows bugs', () => {
    expect(errorReason(new HypervisorError('out-of-memory', 'x'))).toBe('out-of-memory');
    expect(errorReason(new StorageError('busy', 'x'))).toBe('busy');
    expect(errorReason(new TimeoutError('op', 5))).toBe('timeout');
    expect(errorReason(new UnavailableError('store', 'x'))).toBe('store.unavailable');
    expect(errorReason(new Error('x'))).toBe('internal');
    expect(() => errorReason(new AssertionError('bug'))).toThrow(AssertionError);
  });

  it('times out a call that does not settle, and passes through one that does', async () => {
    const sleeps: (() => void)[] = [];
    const sleep = (): Promise<void> => new Promise<void>((resolve) => sleeps.push(resolve));
    const clock: Clock = { nowMs: () => 0, sleep, timer: (ms) => timerFromSleep(sleep, ms) };
    const hung = withTimeout(clock, new Promise<number>(() => {}), 100, 'hypervisor.start');
    sleeps[0]!();
    await expect(hung).rejects.toBeInstanceOf(TimeoutError);
    await expect(withTimeout(clock, Promise.resolve(7), 100, 'x')).resolves.toBe(7);
    await expect(
      withTimeout(clock, Promise.reject(new StorageError('busy', 'b')), 100, 'x'),
    ).rejects.toBeInstanceOf(StorageError);
  });
});
