// Goal: the ZooKeeper lock adapter (src/adapters/zookeeper-locks.ts) honours the Locks contract on a
// real ZooKeeper — sessions kept alive by the client's pings, ephemeral lock nodes, czxid fencing
// tokens, expiry decided by the server — which is what the simulated lock service claims to
// reproduce; plus what only a real server shows: the node layout, names that need escaping, a real
// race for one lock, a dropped connection that is not an expiry, a create whose reply is lost (its
// orphan node must not block the lock), requests cut off by an expiry (settled as the simulator
// settles them), an unreachable server as a retryable error that leaves no socket behind.
// Method: the shared contract suite from test/contract/locks.contract.ts with `settle` = await and
// `advance` = real sleep. Each harness has its own chroot (`/cloudbed_test_<run>_<n>`, removed
// afterwards) and puts a loopback proxy between the lock clients and the server; `expire(session)`
// silences that session's connection at the proxy, as a partition would, and waits for the server
// to expire it and close the connection (within its timeout plus one tick); the proxy then drops the
// client's end, and the client learns of the expiry when it reconnects.
import { afterAll, describe, expect, it } from 'vitest';
import {
  createZooKeeperLocks,
  expireSession,
  sessionCredentials,
} from '../../src/adapters/zookeeper-locks.ts';
import type { LockSession, Locks } from '../../src/ports/locks.ts';
import { locksContract, type LocksHarness } from '../contract/locks.contract.ts';
import { RUN_ID, ZOOKEEPER, requireService, sleep } from './real-services.ts';
import {
  SilencingProxy,
  nodeChildren,
  nodeExists,
  nodeStat,
  removeTree,
  withAdminClient,
} from './zookeeper-harness.ts';

const gate = await requireService(ZOOKEEPER);

/** ZooKeeper's smallest session timeout with its default tickTime of 2 s. */
const SESSION_TIMEOUT_MS = 4_000;
/** The server checks expiry once per tick (2 s); allow that, and a loaded machine, on top. */
const EXPIRY_WAIT_MS_MAX = SESSION_TIMEOUT_MS * 2 + 10_000;

let harnesses = 0;
/** Every chroot this run created, checked for removal at the end. */
const chroots: string[] = [];

/** A harness with its own chroot and proxy; tracks every client to close it. */
async function realHarness(): Promise<LocksHarness & { proxy: SilencingProxy; chroot: string }> {
  const chroot = `/cloudbed_test_${RUN_ID}_${++harnesses}`;
  chroots.push(chroot);
  const proxy = await SilencingProxy.start(ZOOKEEPER);
  const clients: Locks[] = [];
  return {
    proxy,
    chroot,
    impl: {
      connect: () => {
        const locks = createZooKeeperLocks({
          connectString: proxy.connectString,
          chroot,
          operationTimeoutMs: 10_000,
        });
        clients.push(locks);
        return Promise.resolve(locks);
      },
    },
    settle: (promise) => promise,
    advance: (ms) => sleep(ms),
    expire: (session: LockSession) => proxy.silence(session.id, EXPIRY_WAIT_MS_MAX),
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    cleanup: async () => {
      await Promise.all(clients.map((locks) => locks.close()));
      await proxy.close();
      await withAdminClient(ZOOKEEPER, (admin) => removeTree(admin, chroot));
    },
  };
}

afterAll(async () => {
  // A run that could not reach ZooKeeper created nothing to check.
  if (!gate.available || chroots.length === 0) return;
  await withAdminClient(ZOOKEEPER, async (admin) => {
    for (const chroot of chroots) expect(await nodeExists(admin, chroot)).toBe(false);
  });
});

describe.skipIf(!gate.available)(
  `ZooKeeper ${ZOOKEEPER.host}:${ZOOKEEPER.port}${gate.skipReason}`,
  () => {
    locksContract('ZooKeeper adapter on a real ZooKeeper', realHarness);

    describe('ZooKeeper adapter', () => {
      /** Runs `body` with a fresh harness and one Locks client on it, cleaning up afterwards. */
      async function withHarness(
        body: (
          h: Awaited<ReturnType<typeof realHarness>>,
          open: () => Promise<LockSession>,
        ) => Promise<void>,
      ): Promise<void> {
        const h = await realHarness();
        try {
          const locks = await h.impl.connect();
          await body(h, () => locks.openSession({ timeoutMs: SESSION_TIMEOUT_MS }));
        } finally {
          await h.cleanup();
        }
      }

      it('keeps a lock as one ephemeral node of the holder whose czxid is the token', async () => {
        await withHarness(async (h, open) => {
          const a = await open();
          const lease = (await a.tryAcquire('vm/1'))!;
          await withAdminClient(ZOOKEEPER, async (admin) => {
            const dir = `${h.chroot}/locks/vm%2F1`;
            const children = await nodeChildren(admin, dir);
            expect(children).toHaveLength(1);
            expect(children[0]).toMatch(new RegExp(`^lock-${a.id.slice(2)}-\\d{10}$`));
            const stat = (await nodeStat(admin, `${dir}/${children[0]}`))!;
            expect(Number(stat.czxid.readBigInt64BE(0))).toBe(lease.token);
            expect(stat.ephemeralOwner.toString('hex')).toBe(a.id.slice(2));
          });
          await a.release(lease);
          // Releasing tidies the lock's directory away.
          await withAdminClient(ZOOKEEPER, async (admin) => {
            expect(await nodeExists(admin, `${h.chroot}/locks/vm%2F1`)).toBe(false);
          });
        });
      });

      it('treats names with separators and dots as distinct single locks', async () => {
        await withHarness(async (_h, open) => {
          const a = await open();
          const b = await open();
          const names = ['a/b', 'a', '.', '..', 'a.b', 'a%2Fb', 'é/中'];
          for (const name of names) expect(await a.tryAcquire(name)).not.toBeNull();
          for (const name of names) expect(await b.tryAcquire(name)).toBeNull();
        });
      });

      it('lets exactly one of many sessions racing for a free lock win', async () => {
        await withHarness(async (_h, open) => {
          const sessions = await Promise.all([1, 2, 3, 4, 5, 6].map(() => open()));
          for (let round = 0; round < 5; round++) {
            const results = await Promise.all(sessions.map((s) => s.tryAcquire(`race-${round}`)));
            const winners = results.filter((lease) => lease !== null);
            expect(winners).toHaveLength(1);
            // The losers left nothing behind: once the winner releases, anyone gets it.
            const winner = sessions[results.findIndex((lease) => lease !== null)]!;
            await winner.release(winners[0]!);
            const loser = sessions.find((s) => s !== winner)!;
            const next = await loser.tryAcquire(`race-${round}`);
            expect(next!.token).toBeGreaterThan(winners[0]!.token);
          }
        });
      });

      it('survives a dropped connection: the client reconnects to the same session and keeps its locks', async () => {
        await withHarness(async (h, open) => {
          const a = await open();
          const b = await open();
          const lease = (await a.tryAcquire('r'))!;
          let expired = false;
          a.onExpired(() => {
            expired = true;
          });
          h.proxy.drop(a.id);
          // Within the session timeout the server keeps the session; the client resumes it.
          expect(await a.holds(lease)).toBe(true);
          expect(await b.tryAcquire('r')).toBeNull();
          expect(expired).toBe(false);
          expect(a.expired).toBe(false);
        });
      });

      it('removes a node left behind by a create whose reply was lost, so the lock is not stuck', async () => {
        await withHarness(async (h, open) => {
          const a = await open();
          const b = await open();
          const first = (await b.tryAcquire('r'))!;
          // A's create reaches the server; its reply does not.
          h.proxy.loseNextReply(a.id);
          await expect(a.tryAcquire('r')).rejects.toMatchObject({
            code: 'locks.unavailable',
            retryable: true,
          });
          const dir = `${h.chroot}/locks/r`;
          const children = await withAdminClient(ZOOKEEPER, (admin) => nodeChildren(admin, dir));
          expect(children.filter((c) => c.includes(a.id.slice(2)))).toHaveLength(1);
          await b.release(first);
          // Left alone, A's orphan would now be the lowest node: everyone would see the lock held.
          const lease = await a.tryAcquire('r');
          expect(lease).not.toBeNull();
          expect(lease!.token).toBeGreaterThan(first.token);
          const after = await withAdminClient(ZOOKEEPER, (admin) => nodeChildren(admin, dir));
          expect(after).toHaveLength(1);
          await a.release(lease!);
          expect(await b.tryAcquire('r')).not.toBeNull();
        });
      });

      it('settles requests cut off by an expiry as the simulator does: not held, released, refused', async () => {
        await withHarness(async (h, open) => {
          const a = await open();
          const b = await open();
          const lease = (await a.tryAcquire('r'))!;
          const other = (await a.tryAcquire('s'))!;
          const expired = new Promise<void>((resolve) => a.onExpired(resolve));
          // The partition starts now; these requests go out into it and get no reply.
          const expiring = h.proxy.silence(a.id, EXPIRY_WAIT_MS_MAX);
          const holds = a.holds(lease);
          const released = a.release(other);
          const acquired = a.tryAcquire('t').then(
            () => 'granted',
            (error: unknown) => error,
          );
          await expiring;
          await expired;
          expect(await holds).toBe(false);
          await expect(released).resolves.toBeUndefined();
          // The create's fate was unknown when its connection dropped: retryable then, refused now.
          expect(await acquired).toMatchObject({
            code: expect.stringMatching(/^locks\.(unavailable|session-expired)$/),
          });
          await expect(a.tryAcquire('t')).rejects.toMatchObject({
            code: 'locks.session-expired',
            retryable: false,
          });
          // The server freed everything the session held.
          expect(await b.tryAcquire('r')).not.toBeNull();
          expect(await b.tryAcquire('s')).not.toBeNull();
        });
      });

      it('ends a session from outside with its credentials: its locks go at once and its owner never claims them', async () => {
        await withHarness(async (_h, open) => {
          const a = await open();
          const b = await open();
          const lease = (await a.tryAcquire('r'))!;
          const learned = new Promise<void>((resolve) => a.onExpired(resolve));
          const credentials = sessionCredentials(a)!;
          expect(credentials.id).toBe(a.id.slice(2));
          // What a chaos run's session-expire does: join the session on the server, then close it.
          await expireSession(`${ZOOKEEPER.host}:${ZOOKEEPER.port}`, credentials, 4_000);
          expect(await b.tryAcquire('r')).not.toBeNull();
          // The owner usually hears of it at once, when the server drops its connection. Sometimes
          // its old connection neither hears nor answers (ZooKeeper 3.8, a session ended by a
          // client that joined it): then its requests fail, and it must never claim the lock.
          const heard = await Promise.race([
            learned.then(() => true),
            sleep(15_000).then(() => false),
          ]);
          if (heard) {
            expect(a.expired).toBe(true);
            expect(await a.holds(lease)).toBe(false);
          } else {
            const asked = await a.holds(lease).catch((error: unknown) => error);
            expect(asked).not.toBe(true);
          }
          // A session that is gone cannot be ended again.
          await expect(
            expireSession(`${ZOOKEEPER.host}:${ZOOKEEPER.port}`, credentials, 4_000),
          ).rejects.toThrow(/had already expired/);
        });
      });

      it('reports an unreachable server as a retryable UnavailableError, leaving nothing running', async () => {
        const tcpHandles = (): number =>
          process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
        const before = tcpHandles();
        const locks = createZooKeeperLocks({
          // A loopback port nobody listens on.
          connectString: '127.0.0.1:1',
          operationTimeoutMs: 500,
        });
        await expect(locks.openSession({ timeoutMs: SESSION_TIMEOUT_MS })).rejects.toMatchObject({
          name: 'UnavailableError',
          code: 'locks.unavailable',
          retryable: true,
        });
        await locks.close();
        await expect(locks.openSession({ timeoutMs: SESSION_TIMEOUT_MS })).rejects.toMatchObject({
          code: 'locks.closed',
        });
        // The abandoned client may still have a reconnect attempt scheduled (at most 0.2 s away);
        // it must end by itself, leaving no socket behind.
        await sleep(1_000);
        for (let poll = 0; poll < 20 && tcpHandles() > before; poll++) await sleep(100);
        expect(tcpHandles()).toBeLessThanOrEqual(before);
      });
    });
  },
);
