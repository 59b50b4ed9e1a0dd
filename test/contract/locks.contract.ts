// Goal: the Locks port's contract — ZooKeeper-style sessions, ephemeral locks and fencing tokens —
// that every implementation must honour, sim or real. Method: a function that registers vitest
// tests against a harness factory; each test opens sessions on separate client connections, drives
// operations through `settle` (which runs the simulation, or just awaits for a real ZooKeeper), and
// lets time pass with `advance`. Expiry needs the harness's `expire` capability: the simulator pauses
// the holder's process until the server gives up on it; a real harness must make the server expire
// the session by its own means. Tests that need a missing capability are skipped, by name.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lease, LockSession, Locks } from '../../src/ports/locks.ts';

/** What a harness offers: client connections to one lock service. */
export interface LocksConnector {
  /** Opens a new client connection (as a separate process would). */
  connect(): Promise<Locks>;
}

/** A fresh world for one test. */
export interface LocksHarness {
  readonly impl: LocksConnector;
  /** Resolves or rejects as `promise` does, driving the world until it settles (fails if it cannot). */
  settle<T>(promise: Promise<T>): Promise<T>;
  /** Lets `ms` of (virtual or real) time pass; sessions keep heartbeating meanwhile. */
  advance?(ms: number): Promise<void>;
  /**
   * Makes the service expire `session` as if its client had gone silent (stopped heartbeating),
   * and returns once the service has expired it. The client may learn of it later.
   */
  expire?(session: LockSession): Promise<void>;
  /** Session timeout the tests ask for, in ms. Default 4,000 (ZooKeeper's minimum with tickTime 2 s). */
  readonly sessionTimeoutMs?: number;
  cleanup(): Promise<void>;
}

export type LocksHarnessFactory = () => Promise<LocksHarness>;

/** How many times a test polls for the service to free an expired session's lock. */
const FREE_POLLS_MAX = 40;

/** Registers the Locks contract for implementation `name`. */
export function locksContract(name: string, factory: LocksHarnessFactory): void {
  describe(`Locks contract: ${name}`, () => {
    let h: LocksHarness;
    beforeEach(async () => {
      h = await factory();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const timeoutMs = (): number => h.sessionTimeoutMs ?? 4_000;
    /** A session on a client connection of its own. */
    const session = async (): Promise<LockSession> => {
      const locks = await h.settle(h.impl.connect());
      return h.settle(locks.openSession({ timeoutMs: timeoutMs() }));
    };
    const acquire = (s: LockSession, lock: string): Promise<Lease | null> =>
      h.settle(s.tryAcquire(lock));

    it('is exclusive: a second session gets null while the first holds the lock', async () => {
      const a = await session();
      const b = await session();
      const lease = await acquire(a, 'r1');
      expect(lease).toMatchObject({ name: 'r1' });
      expect(Number.isSafeInteger(lease!.token) && lease!.token > 0).toBe(true);
      expect(await acquire(b, 'r1')).toBeNull();
      expect(await h.settle(a.holds(lease!))).toBe(true);
      expect(await h.settle(b.holds(lease!))).toBe(false);
      // Other names are independent.
      expect(await acquire(b, 'r2')).toMatchObject({ name: 'r2' });
      expect(a.id).not.toBe(b.id);
    });

    it('is re-entrant: the holder gets the same lease back', async () => {
      const a = await session();
      const first = await acquire(a, 'r');
      const again = await acquire(a, 'r');
      expect(again).toEqual(first);
      expect(await h.settle(a.holds(first!))).toBe(true);
    });

    it('frees the lock on release; releasing again is a no-op', async () => {
      const a = await session();
      const b = await session();
      const lease = (await acquire(a, 'r'))!;
      await h.settle(a.release(lease));
      expect(await h.settle(a.holds(lease))).toBe(false);
      const next = await acquire(b, 'r');
      expect(next).not.toBeNull();
      expect(next!.token).toBeGreaterThan(lease.token);
      // A's stale lease does not release B's lock.
      await h.settle(a.release(lease));
      expect(await h.settle(b.holds(next!))).toBe(true);
      expect(await acquire(a, 'r')).toBeNull();
    });

    it('grants strictly increasing tokens across holders', async () => {
      const sessions = [await session(), await session(), await session()];
      const tokens: number[] = [];
      for (let round = 0; round < 9; round++) {
        const holder = sessions[round % sessions.length]!;
        const lease = await acquire(holder, 'r');
        expect(lease).not.toBeNull();
        tokens.push(lease!.token);
        await h.settle(holder.release(lease!));
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    it('keeps a heartbeating session alive well past its timeout', async (ctx) => {
      if (h.advance === undefined) ctx.skip('the harness cannot let time pass');
      const a = await session();
      const b = await session();
      const lease = (await acquire(a, 'r'))!;
      await h.advance!(timeoutMs() * 3);
      expect(a.expired).toBe(false);
      expect(await h.settle(a.holds(lease))).toBe(true);
      expect(await acquire(b, 'r')).toBeNull();
    });

    it('frees the locks of an expired session; the next holder gets a greater token', async (ctx) => {
      if (h.expire === undefined) ctx.skip('the harness cannot expire a session');
      const a = await session();
      const b = await session();
      const lease = (await acquire(a, 'r'))!;
      let notified = 0;
      const expiredSeen = new Promise<void>((resolve) => {
        a.onExpired(() => {
          notified++;
          resolve();
        });
      });
      await h.expire!(a);

      let next: Lease | null = null;
      for (let poll = 0; poll < FREE_POLLS_MAX && next === null; poll++) {
        next = await acquire(b, 'r');
        if (next === null) await h.advance?.(timeoutMs() / 4);
      }
      expect(next).not.toBeNull();
      expect(next!.token).toBeGreaterThan(lease.token);

      await h.settle(expiredSeen);
      expect(a.expired).toBe(true);
      expect(await h.settle(a.holds(lease))).toBe(false);
      await expect(h.settle(a.tryAcquire('other'))).rejects.toMatchObject({
        code: 'locks.session-expired',
        retryable: false,
      });
      // Releasing a void lease is a no-op, and does not touch B's.
      await h.settle(a.release(lease));
      expect(await h.settle(b.holds(next!))).toBe(true);
      // Handlers registered after the fact still run, and each runs once.
      const late = new Promise<void>((resolve) => a.onExpired(resolve));
      await h.settle(late);
      expect(notified).toBe(1);
    });

    it('releases every lock of a closed session, and of a closed client', async () => {
      const locksA = await h.settle(h.impl.connect());
      const a1 = await h.settle(locksA.openSession({ timeoutMs: timeoutMs() }));
      const a2 = await h.settle(locksA.openSession({ timeoutMs: timeoutMs() }));
      const b = await session();
      const held = [(await acquire(a1, 'r1'))!, (await acquire(a1, 'r2'))!];
      const other = (await acquire(a2, 'r3'))!;
      let notified = false;
      a1.onExpired(() => {
        notified = true;
      });
      await h.settle(a1.close());
      await h.settle(a1.close());
      for (const lease of held) {
        const next = await acquire(b, lease.name);
        expect(next).not.toBeNull();
        expect(next!.token).toBeGreaterThan(lease.token);
      }
      expect(await acquire(b, 'r3')).toBeNull();
      await h.settle(locksA.close());
      const r3 = await acquire(b, 'r3');
      expect(r3!.token).toBeGreaterThan(other.token);
      // Closing is not expiring.
      expect(notified).toBe(false);
      expect(a1.expired).toBe(false);
    });
  });
}
