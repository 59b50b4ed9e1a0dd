/**
 * The Locks port on a real ZooKeeper, with `node-zookeeper-client` (pure JavaScript). The simulator
 * has its own ZooKeeper-like service (src/sim/sim-locks.ts); both must honour
 * test/contract/locks.contract.ts.
 *
 * - A {@link LockSession} is a ZooKeeper session on a client connection of its own. The client
 *   pings every third of the negotiated timeout; the server expires the session when it hears
 *   nothing for that long, and tells the client so when it reconnects (state EXPIRED): that is when
 *   {@link LockSession.onExpired} handlers run.
 * - A lock `name` is the directory `/locks/<encoded name>`. Taking it creates an
 *   EPHEMERAL_SEQUENTIAL child `lock-<session id>-<sequence>`; the child with the lowest sequence
 *   holds the lock. `tryAcquire` never waits: a session whose child is not the lowest deletes it
 *   and gets null. Children carry the session id so that a child left behind by a create whose
 *   reply was lost can be found and removed on the next attempt.
 * - The fencing token is the holder's node's `czxid` (the transaction id that created it). Zxids
 *   grow with every write, and a holder's node was created after every earlier holder's node, so
 *   tokens strictly increase across holders (above 2^32: the epoch sits in the high bits).
 * - Every request has a deadline; failures are PortErrors: a lost connection or a missed deadline
 *   is retryable, an expired session is not.
 *
 * The module ships no type declarations, so the part of its API used here is typed below and it is
 * loaded with `createRequire`, as src/adapters/postgres-driver.ts loads `pg`.
 */
import { createRequire } from 'node:module';
import { assert } from '../lib/assert.ts';
import { OpenHandles } from '../lib/open-handles.ts';
import { PortError, TimeoutError, UnavailableError } from '../ports/errors.ts';
import type { Lease, LockSession, Locks, SessionOptions } from '../ports/locks.ts';

/** A ZooKeeper client state (`zookeeper.State.*`), compared by identity. */
interface ZkState {
  readonly name: string;
  readonly code: number;
}

/** A node's stat; the library gives 64-bit fields as 8-byte big-endian buffers. */
interface ZkStat {
  readonly czxid: Buffer;
  readonly ephemeralOwner: Buffer;
}

type Callback<T> = (error: Error | null, value: T) => void;

/** The part of `node-zookeeper-client`'s Client this adapter uses. */
interface ZkClient {
  connect(): void;
  close(): void;
  getState(): ZkState;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  on(event: 'state', listener: (state: ZkState) => void): unknown;
  removeListener(event: 'state', listener: (state: ZkState) => void): unknown;
  create(path: string, mode: number, callback: Callback<string>): void;
  remove(path: string, version: number, callback: (error: Error | null) => void): void;
  exists(path: string, callback: Callback<ZkStat | null>): void;
  getChildren(path: string, callback: Callback<string[]>): void;
  /** Internal: the connection manager's socket, destroyed when a client is abandoned. */
  readonly connectionManager?: { readonly socket?: { destroy(): void } };
}

interface ZkModule {
  createClient(
    connectString: string,
    options: {
      sessionTimeout: number;
      spinDelay: number;
      retries: number;
      /** Join this existing session instead of opening a new one (with its password). */
      sessionId?: Buffer;
      sessionPassword?: Buffer;
    },
  ): ZkClient;
  readonly State: {
    readonly SYNC_CONNECTED: ZkState;
    readonly DISCONNECTED: ZkState;
    readonly EXPIRED: ZkState;
    readonly AUTH_FAILED: ZkState;
  };
  readonly CreateMode: { readonly PERSISTENT: number; readonly EPHEMERAL_SEQUENTIAL: number };
}

/** ZooKeeper's error codes (`KeeperException.Code`) that change what this adapter does. */
const ZK = {
  connectionLoss: -4,
  operationTimeout: -7,
  noNode: -101,
  nodeExists: -110,
  notEmpty: -111,
  sessionExpired: -112,
} as const;

/** Options for {@link createZooKeeperLocks}. */
export interface ZooKeeperLocksOptions {
  /** Servers, `host:port[,host:port…]`, without a chroot, e.g. `127.0.0.1:2181`. */
  readonly connectString: string;
  /**
   * A node under which everything lives, e.g. `/cloudbed` or `/test-7f3a`: an absolute path, no
   * trailing `/`. Created when missing. Default: none (the server's root).
   */
  readonly chroot?: string;
  /**
   * Session timeout of the short-lived housekeeping connection that creates the chroot, in ms
   * (> 0). Lock sessions use the timeout passed to {@link Locks.openSession}. Default 10,000.
   */
  readonly sessionTimeoutMs?: number;
  /**
   * Deadline of every request and of establishing a session, in ms (> 0). Default 10,000. A missed
   * deadline is a retryable {@link TimeoutError}; the request may still have taken effect.
   */
  readonly operationTimeoutMs?: number;
}

/** Where lock directories live, under the chroot. */
const LOCKS_ROOT = '/locks';

/** Upper bound of the library's random pause between reconnect attempts, in ms. */
const SPIN_DELAY_MS = 200;

/** Tries to create a lock node when its directory keeps vanishing (emptied and removed meanwhile). */
const CREATE_ATTEMPTS_MAX = 3;

/** Tries of an idempotent request when the connection drops under it. */
const LOSS_ATTEMPTS_MAX = 3;

/** A lock node's name: `lock-<16 hex digits of session id>-<10-digit sequence>`. */
const NODE_PATTERN = /^lock-([0-9a-f]{16})-(\d{10})$/;

function loadZooKeeper(): ZkModule {
  const load = createRequire(import.meta.url);
  return load('node-zookeeper-client') as ZkModule;
}

/** What identifies a ZooKeeper session to the server: its id and password, as hex. */
export interface ZooKeeperSessionCredentials {
  readonly id: string;
  readonly password: string;
}

/** The credentials of a session this adapter opened (a {@link LockSession} from it), else null. */
export function sessionCredentials(session: LockSession): ZooKeeperSessionCredentials | null {
  return session instanceof ZooKeeperLockSession ? session.credentials() : null;
}

/**
 * Expires a session on the server now, from outside the process that owns it (ZooKeeper has no
 * command for it): joins the session with its credentials on a connection of its own and closes
 * it, which ends it on the server and deletes its ephemeral nodes (its locks). The owner learns
 * that its session expired when it next hears from the server — up to a session timeout later, as
 * after a real expiry. The owner's own reconnect can win the session back before the close
 * arrives, so the join is tried again until the server answers that the session is gone. Rejects
 * with {@link UnavailableError} when the session had expired already, or could not be ended.
 */
export async function expireSession(
  connectString: string,
  credentials: ZooKeeperSessionCredentials,
  timeoutMs = 10_000,
): Promise<void> {
  const zk = loadZooKeeper();
  for (let attempt = 0; attempt < EXPIRE_ATTEMPTS; attempt++) {
    const client = zk.createClient(connectString, {
      sessionTimeout: timeoutMs,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
      sessionId: Buffer.from(credentials.id, 'hex'),
      sessionPassword: Buffer.from(credentials.password, 'hex'),
    });
    const connection = new Connection(zk, client, timeoutMs);
    try {
      await connection.connect(connectString);
    } catch (error) {
      if (!(error instanceof PortError && error.code === SESSION_EXPIRED)) throw error;
      if (attempt > 0) return;
      throw new UnavailableError('locks', `session 0x${credentials.id} had already expired`);
    }
    await connection.close();
  }
  throw new UnavailableError(
    'locks',
    `session 0x${credentials.id} was still alive after ${EXPIRE_ATTEMPTS} closes`,
  );
}

/** Joins and closes tried by {@link expireSession} before it gives up. */
const EXPIRE_ATTEMPTS = 5;

/**
 * Creates a {@link Locks} client on ZooKeeper. No connection is opened until the first session;
 * each session is a client connection of its own.
 */
export function createZooKeeperLocks(options: ZooKeeperLocksOptions): Locks {
  const { connectString } = options;
  assert(
    connectString.length > 0 && !connectString.includes('/'),
    `connectString must be host:port[,host:port…] without a chroot, got '${connectString}'`,
  );
  const chroot = options.chroot ?? '';
  assert(
    chroot === '' || /^(\/[^/]+)+$/.test(chroot),
    `chroot must be an absolute path without a trailing '/', got '${chroot}'`,
  );
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
  const operationTimeoutMs = options.operationTimeoutMs ?? 10_000;
  assert(sessionTimeoutMs > 0, 'sessionTimeoutMs must be positive');
  assert(operationTimeoutMs > 0, 'operationTimeoutMs must be positive');
  return new ZooKeeperLocks(loadZooKeeper(), {
    connectString,
    chroot,
    sessionTimeoutMs,
    operationTimeoutMs,
  });
}

interface Settings {
  readonly connectString: string;
  readonly chroot: string;
  readonly sessionTimeoutMs: number;
  readonly operationTimeoutMs: number;
}

class ZooKeeperLocks implements Locks {
  /** @internal Sessions to close with the client. */
  readonly sessions = new OpenHandles<ZooKeeperLockSession>();
  /** Creation of the chroot node, once per client; forgotten when it fails so a later call retries. */
  private chrootReady: Promise<void> | null = null;

  constructor(
    private readonly zk: ZkModule,
    private readonly settings: Settings,
  ) {}

  async openSession(options: SessionOptions): Promise<LockSession> {
    const { timeoutMs } = options;
    assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be > 0, got ${timeoutMs}`);
    if (this.sessions.closed) throw closedError('openSession', 'the lock client');
    await this.ensureChroot();
    const { connectString, chroot, operationTimeoutMs } = this.settings;
    const client = this.zk.createClient(connectString + chroot, {
      sessionTimeout: timeoutMs,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
    });
    const connection = new Connection(this.zk, client, operationTimeoutMs);
    await connection.connect(`${connectString}${chroot}`);
    const session = new ZooKeeperLockSession(connection, this);
    if (this.sessions.closed) {
      // Closed while the session was being opened: it must not outlive the client.
      await session.close();
      throw closedError('openSession', 'the lock client');
    }
    this.sessions.add(session);
    return session;
  }

  close(): Promise<void> {
    return this.sessions.closeAll();
  }

  /** Creates the chroot node through a short-lived connection without chroot. */
  private ensureChroot(): Promise<void> {
    const { chroot, connectString, sessionTimeoutMs, operationTimeoutMs } = this.settings;
    if (chroot === '') return Promise.resolve();
    this.chrootReady ??= (async () => {
      const client = this.zk.createClient(connectString, {
        sessionTimeout: sessionTimeoutMs,
        spinDelay: SPIN_DELAY_MS,
        retries: 0,
      });
      const connection = new Connection(this.zk, client, operationTimeoutMs);
      await connection.connect(connectString);
      try {
        await connection.mkdirp(chroot);
      } finally {
        await connection.close();
      }
    })().catch((error: unknown) => {
      this.chrootReady = null;
      throw error;
    });
    return this.chrootReady;
  }
}

/** What a session remembers of a lock it holds. */
interface Held {
  readonly lease: Lease;
  /** The lock node's path (relative to the chroot). */
  readonly path: string;
}

class ZooKeeperLockSession implements LockSession {
  readonly id: string;
  private isExpired = false;
  private isClosed = false;
  private readonly held = new Map<string, Held>();
  /** Lock names under which a node of this session may have been left behind by a failed request. */
  private readonly dirty = new Set<string>();
  /** Per lock name, the tail of its operations: one at a time per name, so re-entry stays exact. */
  private readonly lanes = new Map<string, Promise<unknown>>();
  private readonly handlers: (() => void)[] = [];
  private readonly notified = new Set<() => void>();
  /** This session's part of its node names: the session id as 16 hex digits. */
  private readonly nodeTag: string;
  private readonly sessionId: Buffer;

  constructor(
    private readonly connection: Connection,
    private readonly owner: ZooKeeperLocks,
  ) {
    this.sessionId = connection.sessionId();
    this.nodeTag = this.sessionId.toString('hex');
    this.id = `0x${this.nodeTag}`;
    connection.onExpired(() => this.learnExpired());
  }

  get expired(): boolean {
    return this.isExpired;
  }

  /** The session's id and password, which let another connection join (and so end) it. */
  credentials(): ZooKeeperSessionCredentials {
    return { id: this.nodeTag, password: this.connection.sessionPassword().toString('hex') };
  }

  async tryAcquire(name: string): Promise<Lease | null> {
    assert(name.length > 0, 'lock name must be non-empty');
    this.throwIfUnusable('tryAcquire');
    return this.inLane(name, () => this.acquireNow(name));
  }

  async release(lease: Lease): Promise<void> {
    // Without a live session there is nothing to release: its nodes are gone already.
    if (this.isExpired || this.isClosed) return;
    await this.inLane(lease.name, async () => {
      const held = this.held.get(lease.name);
      if (held === undefined || held.lease.token !== lease.token) return;
      try {
        await this.call('release', () => this.connection.remove(held.path));
      } catch (error) {
        // The session ended meanwhile, and its nodes with it: nothing left to release.
        if (this.isExpired || this.isClosed) return;
        throw error;
      }
      this.held.delete(lease.name);
      // Tidy up the lock's directory if nobody else is in it; a racing creator recreates it.
      await this.connection.remove(lockDir(lease.name)).catch(() => undefined);
    });
  }

  async holds(lease: Lease): Promise<boolean> {
    if (this.isExpired || this.isClosed) return false;
    const held = this.held.get(lease.name);
    if (held === undefined || held.lease.token !== lease.token) return false;
    let stat: ZkStat | null;
    try {
      stat = await this.call('holds', () => this.connection.exists(held.path));
    } catch (error) {
      // The session ended while we asked: it holds nothing.
      if (this.isExpired || this.isClosed) return false;
      throw error;
    }
    return stat !== null && this.ownsNode(stat) && tokenOf(stat) === lease.token;
  }

  onExpired(handler: () => void): void {
    this.handlers.push(handler);
    // Already known: call it soon, never from inside the registration itself.
    if (this.isExpired) queueMicrotask(() => this.notify(handler));
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.owner.sessions.forget(this);
    this.held.clear();
    // Closing the session makes the server delete its nodes before it acknowledges.
    await this.connection.close();
  }

  /** The service expired this session: leases are void; handlers run once each. */
  private learnExpired(): void {
    if (this.isExpired || this.isClosed) return;
    this.isExpired = true;
    this.held.clear();
    this.owner.sessions.forget(this);
    for (const handler of [...this.handlers]) this.notify(handler);
  }

  private async acquireNow(name: string): Promise<Lease | null> {
    this.throwIfUnusable('tryAcquire');
    const held = this.held.get(name);
    if (held !== undefined) {
      // Re-entry. A node still there is still the lowest: sequence numbers only grow.
      const stat = await this.call('tryAcquire', () => this.connection.exists(held.path));
      if (stat !== null && this.ownsNode(stat)) return held.lease;
      this.held.delete(name);
    }
    const dir = lockDir(name);
    if (this.dirty.has(name)) {
      await this.removeOwnNodes(dir);
      this.dirty.delete(name);
    }
    let path: string;
    try {
      path = await this.createNode(dir);
    } catch (error) {
      // The create may have happened although its reply was lost.
      this.dirty.add(name);
      throw error;
    }
    try {
      const children = await this.call('tryAcquire', () => this.connection.children(dir));
      const own = path.slice(dir.length + 1);
      if (lowestNode(children) !== own) {
        await this.call('tryAcquire', () => this.connection.remove(path));
        return null;
      }
      const stat = await this.call('tryAcquire', () => this.connection.exists(path));
      if (stat === null) {
        throw new UnavailableError('locks', `tryAcquire ${name}: the new lock node vanished`);
      }
      const lease: Lease = { name, token: tokenOf(stat) };
      this.held.set(name, { lease, path });
      return lease;
    } catch (error) {
      this.dirty.add(name);
      throw error;
    }
  }

  /** Creates this session's node under `dir`, creating `dir` (and its parents) when missing. */
  private async createNode(dir: string): Promise<string> {
    const prefix = `${dir}/lock-${this.nodeTag}-`;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connection.createSequential(prefix);
      } catch (error) {
        const noDir = error instanceof ZkRequestError && error.zkCode === ZK.noNode;
        if (!noDir || attempt >= CREATE_ATTEMPTS_MAX) throw this.mapError('tryAcquire', error);
      }
      await this.call('tryAcquire', () => this.connection.mkdirp(dir));
    }
  }

  /** Deletes every node of this session under `dir` (left behind by failed requests). */
  private async removeOwnNodes(dir: string): Promise<void> {
    const children = await this.call('tryAcquire', () => this.connection.children(dir));
    for (const child of children) {
      if (NODE_PATTERN.exec(child)?.[1] === this.nodeTag) {
        await this.call('tryAcquire', () => this.connection.remove(`${dir}/${child}`));
      }
    }
  }

  private ownsNode(stat: ZkStat): boolean {
    return stat.ephemeralOwner.equals(this.sessionId);
  }

  /** Runs a request, turning its failure into a PortError (and an expired session into learning it). */
  private async call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.mapError(operation, error);
    }
  }

  private mapError(operation: string, error: unknown): PortError {
    if (error instanceof ZkRequestError && error.zkCode === ZK.sessionExpired) this.learnExpired();
    // Requests cut off by the expiry fail as a lost connection; they are expired all the same.
    if (this.isExpired) return expiredError(operation, this.id, error);
    if (this.isClosed) return closedError(operation, `session ${this.id}`);
    return toPortError(operation, error);
  }

  private inLane<T>(name: string, run: () => Promise<T>): Promise<T> {
    const tail = this.lanes.get(name) ?? Promise.resolve();
    const result = tail.then(run, run);
    const settled = result.catch(() => undefined);
    this.lanes.set(name, settled);
    void settled.then(() => {
      if (this.lanes.get(name) === settled) this.lanes.delete(name);
    });
    return result;
  }

  /** Calls `handler` at most once, whatever path told us of the expiry. */
  private notify(handler: () => void): void {
    if (this.notified.has(handler)) return;
    this.notified.add(handler);
    handler();
  }

  private throwIfUnusable(operation: string): void {
    if (this.isClosed) throw closedError(operation, `session ${this.id}`);
    if (this.isExpired) throw expiredError(operation, this.id);
  }
}

/** A ZooKeeper error, with its code, as raised by {@link Connection} requests. */
class ZkRequestError extends Error {
  override name = 'ZkRequestError';
  constructor(
    readonly zkCode: number,
    message: string,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

/**
 * One client connection: requests as promises with a deadline, and the life cycle (connect within
 * a deadline, close that waits for the server, abandon that leaves nothing running).
 */
class Connection {
  private expiredListener: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /**
   * Requests awaiting their reply. The library never answers requests it queued but had not sent
   * when the session expired, nor those of a client that was stopped: they are failed here.
   */
  private readonly pending = new Set<(error: ZkRequestError) => void>();

  constructor(
    private readonly zk: ZkModule,
    private readonly client: ZkClient,
    private readonly timeoutMs: number,
  ) {
    client.on('state', (state) => {
      if (state === zk.State.EXPIRED) {
        this.expiredListener?.();
        this.failPending(ZK.sessionExpired, 'the session has expired');
        // The library stops by itself after EXPIRED; make sure no socket is left open.
        this.abandon();
      }
    });
  }

  /** Connects and waits for the session; fails with UnavailableError (client abandoned) on timeout. */
  connect(where: string): Promise<void> {
    const { client, zk } = this;
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: PortError): void => {
        clearTimeout(timer);
        client.removeListener('state', listener);
        if (error === undefined) {
          resolve();
        } else {
          this.abandon();
          reject(error);
        }
      };
      const listener = (state: ZkState): void => {
        if (state === zk.State.SYNC_CONNECTED) finish();
        else if (state === zk.State.AUTH_FAILED)
          finish(new PortError('locks.auth-failed', `ZooKeeper at ${where} refused the client`));
        // Only a client that joins an existing session (expireSession) can meet this here.
        else if (state === zk.State.EXPIRED) finish(expiredError('connect', `at ${where}`));
      };
      const timer = setTimeout(() => {
        finish(
          new UnavailableError(
            'locks',
            `no ZooKeeper session at ${where} within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      client.on('state', listener);
      client.connect();
    });
  }

  sessionId(): Buffer {
    return this.client.getSessionId();
  }

  sessionPassword(): Buffer {
    return this.client.getSessionPassword();
  }

  onExpired(listener: () => void): void {
    this.expiredListener = listener;
  }

  createSequential(pathPrefix: string): Promise<string> {
    return this.request<string>('create', (done) =>
      this.client.create(pathPrefix, this.zk.CreateMode.EPHEMERAL_SEQUENTIAL, done),
    );
  }

  /** Creates `path` and its missing parents as persistent nodes. */
  async mkdirp(path: string): Promise<void> {
    const parts = path.split('/').slice(1);
    for (let i = 1; i <= parts.length; i++) {
      const prefix = `/${parts.slice(0, i).join('/')}`;
      try {
        await this.idempotent<string>('create', (done) =>
          this.client.create(prefix, this.zk.CreateMode.PERSISTENT, done),
        );
      } catch (error) {
        if (!(error instanceof ZkRequestError && error.zkCode === ZK.nodeExists)) throw error;
      }
    }
  }

  /** Deletes `path` (any version); false when it did not exist. Fails if it has children. */
  async remove(path: string): Promise<boolean> {
    try {
      await this.idempotent<undefined>('delete', (done) =>
        this.client.remove(path, -1, (error) => done(error, undefined)),
      );
      return true;
    } catch (error) {
      if (error instanceof ZkRequestError && error.zkCode === ZK.noNode) return false;
      throw error;
    }
  }

  exists(path: string): Promise<ZkStat | null> {
    return this.idempotent<ZkStat | null>('exists', (done) => this.client.exists(path, done));
  }

  /** The names of the children of `path`; none when `path` does not exist. */
  async children(path: string): Promise<string[]> {
    try {
      return await this.idempotent<string[]>('getChildren', (done) =>
        this.client.getChildren(path, done),
      );
    } catch (error) {
      if (error instanceof ZkRequestError && error.zkCode === ZK.noNode) return [];
      throw error;
    }
  }

  /**
   * Closes the session and waits until the server has closed the connection (after deleting the
   * session's ephemeral nodes). A client that is not connected, or a close that misses its
   * deadline, is abandoned instead: the server then expires the session after its timeout.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const { client, zk } = this;
      if (client.getState() !== zk.State.SYNC_CONNECTED) {
        this.abandon();
        resolve();
        return;
      }
      const listener = (state: ZkState): void => {
        if (state === zk.State.DISCONNECTED || state === zk.State.EXPIRED) {
          clearTimeout(timer);
          client.removeListener('state', listener);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        client.removeListener('state', listener);
        this.abandon();
        resolve();
      }, this.timeoutMs);
      client.on('state', listener);
      client.close();
    });
    return this.closing;
  }

  /**
   * Stops the client without waiting for the server. Closing first puts the library in a state in
   * which a dropped socket is not reconnected; a reconnect it had already scheduled ends on its own
   * at the first reply, which it cannot match to a request.
   */
  private abandon(): void {
    this.expiredListener = null;
    this.failPending(ZK.connectionLoss, 'the client was stopped');
    try {
      this.client.close();
    } catch {
      // Already closed: nothing to stop.
    }
    this.client.connectionManager?.socket?.destroy();
  }

  /**
   * A request that may safely run twice — a read, a delete (a repeat finds NO_NODE), a persistent
   * create (a repeat finds NODE_EXISTS) — retried when the connection drops under it: the library
   * holds the retry until it has reconnected, so a blip shorter than the session timeout is
   * invisible. Sequential creates are never retried (a repeat would make a second node).
   */
  private async idempotent<T>(what: string, send: (done: Callback<T>) => void): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request(what, send);
      } catch (error) {
        const lost = error instanceof ZkRequestError && error.zkCode === ZK.connectionLoss;
        if (!lost || attempt >= LOSS_ATTEMPTS_MAX) throw error;
      }
    }
  }

  /** Fails every request still awaiting a reply. */
  private failPending(code: number, reason: string): void {
    for (const fail of [...this.pending]) {
      fail(new ZkRequestError(code, reason, { cause: undefined }));
    }
  }

  /** One request with a deadline; the library's error becomes a {@link ZkRequestError}. */
  private request<T>(what: string, send: (done: Callback<T>) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        if (!this.pending.delete(fail)) return;
        clearTimeout(timer);
        outcome();
      };
      const fail = (error: ZkRequestError): void => finish(() => reject(error));
      const timer = setTimeout(
        () => finish(() => reject(new TimeoutError(`zookeeper ${what}`, this.timeoutMs))),
        this.timeoutMs,
      );
      this.pending.add(fail);
      send((error, value) =>
        finish(() => (error === null ? resolve(value) : reject(toZkError(what, error)))),
      );
    });
  }
}

/** Wraps a library error, keeping its ZooKeeper code when it has one. */
function toZkError(what: string, error: Error): ZkRequestError | Error {
  const code = (error as { getCode?: () => unknown }).getCode?.();
  if (typeof code !== 'number') return error;
  return new ZkRequestError(code, `zookeeper ${what}: ${error.message}`, { cause: error });
}

/** A failure as the port reports it: connection trouble is retryable, anything else is not. */
function toPortError(operation: string, error: unknown): PortError {
  if (error instanceof PortError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (
    error instanceof ZkRequestError &&
    (error.zkCode === ZK.connectionLoss || error.zkCode === ZK.operationTimeout)
  ) {
    return new UnavailableError('locks', `${operation} failed: ${reason}`, error);
  }
  return new PortError('locks.failed', `${operation} failed: ${reason}`, {
    retryable: false,
    cause: error,
  });
}

/** The code of a call on (or a join of) a session that has expired. */
const SESSION_EXPIRED = 'locks.session-expired';

function expiredError(operation: string, id: string, cause?: unknown): PortError {
  return new PortError(SESSION_EXPIRED, `${operation}: session ${id} has expired`, {
    retryable: false,
    cause,
  });
}

function closedError(operation: string, what: string): PortError {
  return new PortError('locks.closed', `${operation}: ${what} is closed`, { retryable: false });
}

/**
 * The directory of lock `name`. Names are percent-encoded into one path segment (`/` and other
 * separators escaped, `.` too, since `.` and `..` are not valid ZooKeeper node names).
 */
function lockDir(name: string): string {
  return `${LOCKS_ROOT}/${encodeURIComponent(name).replaceAll('.', '%2E')}`;
}

/** The lock node with the lowest sequence among `children`, or undefined if there is none. */
function lowestNode(children: readonly string[]): string | undefined {
  let lowest: { node: string; sequence: number } | undefined;
  for (const node of children) {
    const sequence = NODE_PATTERN.exec(node)?.[2];
    if (sequence === undefined) continue;
    const n = Number(sequence);
    if (lowest === undefined || n < lowest.sequence) lowest = { node, sequence: n };
  }
  return lowest?.node;
}

/** The fencing token of a lock node: its czxid, as a number (exact below 2^53). */
function tokenOf(stat: ZkStat): number {
  const czxid = stat.czxid.readBigInt64BE(0);
  const token = Number(czxid);
  assert(Number.isSafeInteger(token) && token > 0, `czxid ${czxid} is not a usable fencing token`);
  return token;
}
