// Goal: show that the simulated ZooKeeper-like lock service honours the Locks contract, and pin down
// what only the simulator promises: a crashed or paused holder's session expires on the server's
// clock while it is away; a lost expiry notice is made up for by the next heartbeat; operations are
// round trips that a dead process never sees the end of; requests keep FIFO order; checkers can read
// holders and grants synchronously; same seed ⇒ same trace.
// Method: the contract runs on a harness that drives the scheduler until each awaited promise
// settles (expiry = pause the holder's process past its timeout); the simulator-only cases build
// small worlds of processes and inspect the service and the trace.
import { describe, expect, it } from 'vitest';
import type { Lease, LockSession, Locks } from '../../src/ports/locks.ts';
import { PortError } from '../../src/ports/errors.ts';
import { SimLockService } from '../../src/sim/sim-locks.ts';
import { Simulation } from '../../src/sim/simulation.ts';
import { settleIn as settleWithin, trackFailures } from '../support/sim-settle.ts';
import type { SimProcess } from '../../src/sim/process.ts';
import { locksContract, type LocksHarness } from './locks.contract.ts';

/** How far past "now" a settle may drive virtual time before it gives up. */
const SETTLE_HORIZON_MS = 120_000;

/** A small world: a simulation, a lock service, and helpers to drive both from a test. */
class World {
  readonly sim: Simulation;
  readonly service: SimLockService;
  private readonly failures: unknown[];
  private lane: Promise<unknown> = Promise.resolve();
  private processes = 0;

  constructor(seed: number, options: { keepTrace?: boolean } = {}) {
    this.sim = new Simulation({ seed, trace: { keepEntries: options.keepTrace ?? false } });
    this.failures = trackFailures(this.sim);
    this.service = new SimLockService({ sim: this.sim });
  }

  /** Settles one promise at a time: two loops stepping one scheduler would never find quiescence. */
  settle<T>(promise: Promise<T>): Promise<T> {
    const run = this.lane.then(() =>
      settleWithin(this.sim, this.failures, promise, SETTLE_HORIZON_MS),
    );
    this.lane = run.catch(() => undefined);
    return run;
  }

  advance(ms: number): Promise<void> {
    return this.settle(
      new Promise<void>((resolve) => {
        this.sim.schedule({ delayMs: ms, label: 'test.advance', run: resolve });
      }),
    );
  }

  /** A process that only owns a Locks handle driven from the test. */
  client(name = `client-${++this.processes}`): { process: SimProcess; locks: Locks } {
    const process = this.sim.spawn(name, () => new Promise<void>(() => {}));
    return { process, locks: this.service.locksFor(process.start()) };
  }
}

function simHarness(seed: number): LocksHarness {
  const world = new World(seed);
  const owners = new Map<string, SimProcess>();
  const timeoutMs = 4_000;
  return {
    impl: {
      connect: () => {
        const { process, locks } = world.client();
        // Remember which process owns each session, so `expire` knows whom to pause.
        const tracked: Locks = {
          openSession: async (options) => {
            const session = await locks.openSession(options);
            owners.set(session.id, process);
            return session;
          },
          close: () => locks.close(),
        };
        return Promise.resolve(tracked);
      },
    },
    settle: (promise) => world.settle(promise),
    advance: (ms) => world.advance(ms),
    // A stop-the-world pause longer than the timeout: the server stops hearing from the session.
    expire: async (session) => {
      const owner = owners.get(session.id);
      if (owner === undefined) throw new Error(`unknown session ${session.id}`);
      owner.pause();
      await world.advance(timeoutMs * 2);
      expect(world.service.sessionInfo(session.id)?.state).toBe('expired');
      owner.resume();
    },
    sessionTimeoutMs: timeoutMs,
    cleanup: () => Promise.resolve(),
  };
}

locksContract('simulated ZooKeeper-like service, seed 1', () => Promise.resolve(simHarness(1)));
locksContract('simulated ZooKeeper-like service, seed 2', () => Promise.resolve(simHarness(2)));

describe('SimLockService', () => {
  it('expires a crashed holder after its timeout; the next token is greater and checkers see it', async () => {
    const w = new World(3);
    const a = w.client('holder');
    const b = w.client('other');
    const sa = await w.settle(a.locks.openSession({ timeoutMs: 1_000 }));
    const sb = await w.settle(b.locks.openSession({ timeoutMs: 1_000 }));
    const lease = (await w.settle(sa.tryAcquire('vm-1')))!;
    expect(w.service.holderOf('vm-1')).toEqual({
      name: 'vm-1',
      sessionId: sa.id,
      owner: 'holder#1',
      token: lease.token,
    });
    const crashedAt = w.sim.scheduler.now;
    a.process.crash();
    // Not before the timeout: the server has no way to know the holder is gone.
    await w.advance(900);
    expect(w.service.holderOf('vm-1')?.sessionId).toBe(sa.id);
    await w.advance(300);
    expect(w.service.sessionInfo(sa.id)).toMatchObject({ state: 'expired', locks: [] });
    expect(w.service.holderOf('vm-1')).toBeNull();
    expect(w.service.sessionInfo(sa.id)!.lastHeardMs).toBeGreaterThan(crashedAt - 1_000);

    const next = (await w.settle(sb.tryAcquire('vm-1')))!;
    expect(next.token).toBeGreaterThan(lease.token);
    expect(w.service.grants().map((g) => [g.name, g.owner, g.token])).toEqual([
      ['vm-1', 'holder#1', lease.token],
      ['vm-1', 'other#1', next.token],
    ]);
    expect(w.service.holders()).toEqual([
      { name: 'vm-1', sessionId: sb.id, owner: 'other#1', token: next.token },
    ]);
    // The dead client never learns anything: its handle is inert.
    expect(sa.expired).toBe(false);
  });

  it('expires a paused holder; on resume it learns of it from the notice and calls onExpired once', async () => {
    const w = new World(4, { keepTrace: true });
    const a = w.client('holder');
    const sa = await w.settle(a.locks.openSession({ timeoutMs: 1_000 }));
    const lease = (await w.settle(sa.tryAcquire('vm-1')))!;
    let calls = 0;
    let calledAt = -1;
    sa.onExpired(() => {
      calls++;
      calledAt = w.sim.scheduler.now;
    });
    const pausedAt = w.sim.scheduler.now;
    a.process.pause({ resumeAfterMs: 5_000 });
    await w.advance(2_000);
    expect(w.service.sessionInfo(sa.id)?.state).toBe('expired');
    // Paused: it still believes it holds the lock — the hazard fencing guards against.
    expect(sa.expired).toBe(false);
    expect(calls).toBe(0);
    await w.advance(4_000);
    expect(sa.expired).toBe(true);
    expect(calls).toBe(1);
    expect(calledAt).toBeGreaterThanOrEqual(pausedAt + 5_000);
    expect(await w.settle(sa.holds(lease))).toBe(false);
    const seen = w.sim.trace
      .entries()
      .lines.map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e['kind'] === 'locks.expiry-seen');
    expect(seen).toMatchObject([{ proc: 'holder#1', session: sa.id }]);
  });

  it('makes up for a lost expiry notice at the next heartbeat', async () => {
    const w = new World(5);
    const lost: string[] = [];
    w.service.setExpiryNoticeFilter((notice) => {
      lost.push(notice.sessionId);
      return [];
    });
    const a = w.client('holder');
    const sa = await w.settle(a.locks.openSession({ timeoutMs: 900 }));
    let notified = false;
    sa.onExpired(() => {
      notified = true;
    });
    // A forced expiry while the client runs normally: only the notice or a reply can tell it.
    w.service.expireSession(sa.id);
    expect(w.service.sessionInfo(sa.id)?.state).toBe('expired');
    expect(lost).toEqual([sa.id]);
    await w.advance(50);
    expect(sa.expired).toBe(false);
    // Heartbeats come every 300 ms; the next one's reply says the session is gone.
    await w.advance(400);
    expect(sa.expired).toBe(true);
    expect(notified).toBe(true);
  });

  it('gives a crashed caller no reply, while its request still reaches the server', async () => {
    const w = new World(6);
    const a = w.client('holder');
    const sa = await w.settle(a.locks.openSession({ timeoutMs: 1_000 }));
    let replied = false;
    void sa.tryAcquire('vm-1').then(() => {
      replied = true;
    });
    a.process.crash();
    await w.advance(100);
    expect(replied).toBe(false);
    // The request was on the wire: the lock was granted, and stays until the session expires.
    expect(w.service.holderOf('vm-1')?.sessionId).toBe(sa.id);
    await w.advance(1_500);
    expect(w.service.holderOf('vm-1')).toBeNull();
  });

  it('takes virtual time for a round trip and keeps requests of one client in order', async () => {
    const w = new World(7);
    const a = w.client('holder');
    const sa = await w.settle(a.locks.openSession({ timeoutMs: 1_000 }));
    const start = w.sim.scheduler.now;
    // Issued without waiting: acquire, release, acquire must apply in that order.
    const first = sa.tryAcquire('r');
    const firstLease = (await w.settle(first))!;
    expect(w.sim.scheduler.now).toBeGreaterThan(start);
    const released = sa.release(firstLease);
    const second = sa.tryAcquire('r');
    const both = await w.settle(Promise.all([released, second]));
    expect(both[1]!.token).toBeGreaterThan(firstLease.token);
    expect(w.service.holderOf('r')?.token).toBe(both[1]!.token);
  });

  it('is deterministic: same seed, same trace and grants; another seed, other timings', async () => {
    async function run(seed: number): Promise<{ hash: string; grants: string[] }> {
      const sim = new Simulation({ seed });
      const service = new SimLockService({ sim });
      for (const name of ['p1', 'p2', 'p3']) {
        sim
          .spawn(name, async (inc) => {
            const locks = service.locksFor(inc);
            let session: LockSession = await locks.openSession({ timeoutMs: 600 });
            for (let i = 0; i < 5; i++) {
              // After a pause the session may be gone: start a new one, as a restarted loop would.
              if (session.expired) session = await locks.openSession({ timeoutMs: 600 });
              let lease: Lease | null = null;
              try {
                lease = await session.tryAcquire('shared');
              } catch (error) {
                if (!(error instanceof PortError && error.code === 'locks.session-expired'))
                  throw error;
              }
              await inc.sleep(inc.runtime.random.int(10, 200));
              if (lease !== null) await session.release(lease);
            }
            await locks.close();
          })
          .start();
      }
      sim.schedule({ delayMs: 150, label: 'fault', run: () => sim.process('p2').pause() });
      sim.schedule({ delayMs: 1_500, label: 'heal', run: () => sim.process('p2').resume() });
      const result = await sim.run({ budget: { maxSteps: 20_000, maxSimTimeMs: 60_000 } });
      expect(result.verdict).toBe('ok');
      const grants = service.grants().map((g) => `${g.owner}:${g.token}@${g.atMs}`);
      return { hash: result.traceHash, grants };
    }
    const a = await run(21);
    const b = await run(21);
    const c = await run(22);
    expect(a.grants.length).toBeGreaterThan(3);
    expect(b).toEqual(a);
    expect(c.hash).not.toBe(a.hash);
    expect(c.grants).not.toEqual(a.grants);
  });
});
