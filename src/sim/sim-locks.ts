/**
 * The lock service inside the simulator: a ZooKeeper-like server held as world state, and the
 * client each process incarnation uses to reach it through the Locks port.
 *
 * Server ({@link SimLockService}): sessions with a negotiated timeout; a session not heard from for
 * `timeoutMs` expires, which the server notices with scheduled world events, as ZooKeeper's leader
 * does. Locks are ephemeral nodes owned by a session and vanish with it. Every write advances a
 * global transaction id (ZooKeeper's zxid); a grant's fencing token is the zxid that created the
 * node (its czxid), so tokens strictly increase across all locks and holders.
 *
 * Client ({@link SimLockService.locksFor}): every operation is a round trip — a request that reaches
 * the server after a latency (it is on the wire: it arrives even if the sender dies meanwhile) and a
 * reply that is an event owned by the incarnation (a dead one never sees it, a paused one on
 * resume). Requests and replies keep FIFO order per client connection, as ZooKeeper guarantees. An
 * open session heartbeats from its incarnation every `timeoutMs / 3`; a paused or crashed
 * incarnation stops, and the server expires its session while it is away — the very situation
 * fencing exists for.
 *
 * Fault seams: {@link ExpiryNoticeFilter} decides whether and when the server's expiry notice
 * reaches the client (a lost one is noticed at the next heartbeat); {@link SimLockService.expireSession}
 * forces expiry; slow or failing operations decorate the Locks port. Checkers read the server's
 * state synchronously: {@link SimLockService.holders}, {@link SimLockService.grants}.
 */
import { AssertionError, assert } from '../lib/assert.ts';
import { OpenHandles } from '../lib/open-handles.ts';
import type { Prng } from '../lib/prng.ts';
import type { Lease, LockSession, Locks, SessionOptions } from '../ports/locks.ts';
import { PortError } from '../ports/errors.ts';
import type { Incarnation } from './process.ts';
import type { Simulation } from './simulation.ts';
import { assertLatencyRange, sampleLatency, type LatencyRange } from './latency-range.ts';

/** Default one-way client/server latency. */
export const LOCKS_LATENCY_DEFAULT: LatencyRange = { minMs: 0.5, maxMs: 2.5 };

/** Heartbeats per session timeout, as ZooKeeper clients ping at a third of it. */
export const HEARTBEATS_PER_TIMEOUT = 3;

/** The server's notice that a session expired, on its way to the client. */
export interface ExpiryNotice {
  readonly sessionId: string;
  /** The label of the incarnation that opened the session. */
  readonly owner: string;
  /** The delay the healthy network would apply, in virtual ms from now. */
  readonly delayMs: number;
}

/**
 * Decides the fate of an expiry notice: the delays (virtual ms from now, each >= 0) of its copies;
 * `[]` loses it. Healthy: `(n) => [n.delayMs]`. Must be deterministic.
 */
export type ExpiryNoticeFilter = (notice: ExpiryNotice) => readonly number[];

/** Options for {@link SimLockService}. */
export interface SimLockServiceOptions {
  readonly sim: Simulation;
  /** One-way latency of requests, replies and notices. Default {@link LOCKS_LATENCY_DEFAULT}. */
  readonly latency?: LatencyRange;
  /** Initial expiry-notice filter; none means every notice arrives. */
  readonly expiryNoticeFilter?: ExpiryNoticeFilter;
}

/** A session's state at the server. */
export type SessionState = 'open' | 'expired' | 'closed';

/** A lock's current holder, as the server sees it. */
export interface LockHolder {
  readonly name: string;
  readonly sessionId: string;
  /** Label of the incarnation that opened the holding session. */
  readonly owner: string;
  readonly token: number;
}

/** One grant, for checkers: tokens in grant order. */
export interface LockGrant extends LockHolder {
  /** Virtual time of the grant, in ms since the run's start. */
  readonly atMs: number;
}

/** A session as the server sees it. */
export interface SessionInfo {
  readonly id: string;
  readonly owner: string;
  readonly state: SessionState;
  readonly timeoutMs: number;
  /** Virtual time the server last heard from the session. */
  readonly lastHeardMs: number;
  /** Names of the locks it holds, sorted. */
  readonly locks: readonly string[];
}

/** Server-side session. */
interface ServerSession {
  readonly id: string;
  readonly owner: string;
  readonly timeoutMs: number;
  state: SessionState;
  lastHeardMs: number;
  /** Bumped whenever the server hears from the session; an expiry check holds the value it saw. */
  beat: number;
  readonly locks: Set<string>;
  /** Sends the expiry notice to the client connection that opened the session. */
  readonly notify: (sessionId: string) => void;
}

/** Outcomes of server operations: data, mapped to the port's results by the client. */
type AcquireOutcome =
  | { readonly kind: 'granted'; readonly token: number }
  | { readonly kind: 'busy' }
  | { readonly kind: 'gone'; readonly state: 'expired' | 'closed' };
type LiveOutcome =
  { readonly kind: 'ok' } | { readonly kind: 'gone'; readonly state: 'expired' | 'closed' };

/** The simulated ZooKeeper ensemble: world state, and the clients' handles onto it. */
export class SimLockService {
  private readonly server: LockServer;

  constructor(options: SimLockServiceOptions) {
    this.server = new LockServer(options);
  }

  /** A Locks handle (one client connection) for `incarnation`; inert once it dies. */
  locksFor(incarnation: Incarnation): Locks {
    assert(incarnation.alive, `locksFor: ${incarnation.label} is not alive`);
    return new SimLocksClient(this.server, this.server.sim, incarnation);
  }

  /** Replaces the expiry-notice filter (null: every notice arrives), e.g. as a fault phase starts or heals. */
  setExpiryNoticeFilter(filter: ExpiryNoticeFilter | null): void {
    this.server.filter = filter;
  }

  /** Expires a session now, as if its timeout had passed (fault injection). No-op unless open. */
  expireSession(id: string): void {
    this.server.expireSession(id);
  }

  // Inspection for checkers: synchronous and read-only.

  /** The current holder of lock `name`, or null. */
  holderOf(name: string): LockHolder | null {
    return this.server.holderOf(name);
  }

  /** Every held lock, sorted by name. */
  holders(): readonly LockHolder[] {
    return this.server.holders();
  }

  /** Every grant so far, in grant order (tokens strictly increase along it). */
  grants(): readonly LockGrant[] {
    return this.server.grants();
  }

  /** A session's server-side state, or null if no such session was ever opened. */
  sessionInfo(id: string): SessionInfo | null {
    return this.server.sessionInfo(id);
  }

  /** The newest transaction id: every token granted so far is <= this. */
  get lastZxid(): number {
    return this.server.lastZxid;
  }
}

/** The server: sessions, nodes and the transaction counter; changed by arriving requests and expiry checks. */
class LockServer {
  readonly sim: Simulation;
  private readonly random: Prng;
  private readonly latency: LatencyRange;
  filter: ExpiryNoticeFilter | null;
  private readonly sessions = new Map<string, ServerSession>();
  /** Lock nodes by name: who holds each one. */
  private readonly nodes = new Map<string, LockHolder>();
  private readonly grantLog: LockGrant[] = [];
  private zxid = 0;
  private sessionCount = 0;

  constructor(options: SimLockServiceOptions) {
    this.sim = options.sim;
    this.random = options.sim.random.fork('locks');
    this.latency = options.latency ?? LOCKS_LATENCY_DEFAULT;
    assertLatencyRange(this.latency, 'locks');
    this.filter = options.expiryNoticeFilter ?? null;
  }

  /** The current holder of lock `name`, or null. */
  holderOf(name: string): LockHolder | null {
    return this.nodes.get(name) ?? null;
  }

  /** Every held lock, sorted by name. */
  holders(): readonly LockHolder[] {
    return [...this.nodes.keys()].sort().map((name) => this.holderOf(name) as LockHolder);
  }

  /** Every grant so far, in grant order (tokens strictly increase along it). */
  grants(): readonly LockGrant[] {
    return this.grantLog;
  }

  /** A session's server-side state, or null if no such session was ever opened. */
  sessionInfo(id: string): SessionInfo | null {
    const session = this.sessions.get(id);
    if (session === undefined) return null;
    return {
      id,
      owner: session.owner,
      state: session.state,
      timeoutMs: session.timeoutMs,
      lastHeardMs: session.lastHeardMs,
      locks: [...session.locks].sort(),
    };
  }

  /** The newest transaction id: every token granted so far is <= this. */
  get lastZxid(): number {
    return this.zxid;
  }

  /** Expires a session now, as if its timeout had passed (fault injection). No-op unless open. */
  expireSession(id: string): void {
    const session = this.sessions.get(id);
    if (session !== undefined && session.state === 'open') this.end(session, 'expired');
  }

  // Server operations, run when a request arrives.

  /** A one-way latency sample. */
  drawLatency(): number {
    return sampleLatency(this.latency, this.random);
  }

  /** The delays of an expiry notice's copies, through the filter. */
  noticeDelays(notice: ExpiryNotice): readonly number[] {
    return this.filter === null ? [notice.delayMs] : this.filter(notice);
  }

  openSession(owner: string, timeoutMs: number, notify: (sessionId: string) => void): string {
    const id = `session-${(++this.sessionCount).toString(16).padStart(4, '0')}`;
    this.zxid++;
    const session: ServerSession = {
      id,
      owner,
      timeoutMs,
      state: 'open',
      lastHeardMs: this.now,
      beat: 0,
      locks: new Set(),
      notify,
    };
    this.sessions.set(id, session);
    this.sim.record({ kind: 'locks.session-open', session: id, owner, timeoutMs });
    this.scheduleExpiryCheck(session);
    return id;
  }

  /** A heartbeat, or any request: the session is alive. */
  touch(id: string): LiveOutcome {
    const session = this.session(id);
    if (session.state !== 'open') return { kind: 'gone', state: session.state };
    session.lastHeardMs = this.now;
    session.beat++;
    return { kind: 'ok' };
  }

  acquire(id: string, name: string): AcquireOutcome {
    const live = this.touch(id);
    if (live.kind === 'gone') return live;
    const session = this.session(id);
    const node = this.nodes.get(name);
    if (node !== undefined) {
      // Re-entrant: the holder gets its own lease back, same token.
      return node.sessionId === id ? { kind: 'granted', token: node.token } : { kind: 'busy' };
    }
    const token = ++this.zxid;
    const holder: LockHolder = { name, sessionId: id, owner: session.owner, token };
    this.nodes.set(name, holder);
    session.locks.add(name);
    this.grantLog.push({ ...holder, atMs: this.now });
    this.sim.record({ kind: 'locks.grant', name, token, session: id });
    return { kind: 'granted', token };
  }

  /** Deletes the node if this session holds it with this token; anything else is a no-op. */
  release(id: string, lease: Lease): LiveOutcome {
    const live = this.touch(id);
    if (live.kind === 'gone') return live;
    const node = this.nodes.get(lease.name);
    if (node !== undefined && node.sessionId === id && node.token === lease.token) {
      this.deleteNode(lease.name, 'released');
    }
    return live;
  }

  holds(id: string, lease: Lease): LiveOutcome & { readonly holds: boolean } {
    const live = this.touch(id);
    if (live.kind === 'gone') return { ...live, holds: false };
    const node = this.nodes.get(lease.name);
    return {
      ...live,
      holds: node !== undefined && node.sessionId === id && node.token === lease.token,
    };
  }

  /** Closes a session and deletes its nodes. */
  close(id: string): void {
    const session = this.session(id);
    if (session.state === 'open') this.end(session, 'closed');
  }

  private get now(): number {
    return this.sim.scheduler.now;
  }

  private session(id: string): ServerSession {
    const session = this.sessions.get(id);
    assert(session !== undefined, `no session ${id}`);
    return session;
  }

  /**
   * Checks the session once its timeout could have passed. The check carries the heartbeat count
   * it expects: if nothing was heard since, the session expires; otherwise it re-arms for the new
   * deadline. Comparing counts, not float times, makes the decision exact.
   */
  private scheduleExpiryCheck(session: ServerSession): void {
    const beat = session.beat;
    this.sim.schedule({
      delayMs: Math.max(0, session.lastHeardMs + session.timeoutMs - this.now),
      label: 'locks.session-check',
      run: () => {
        if (session.state !== 'open') return;
        if (session.beat === beat) this.end(session, 'expired');
        else this.scheduleExpiryCheck(session);
      },
    });
  }

  private end(session: ServerSession, state: 'expired' | 'closed'): void {
    session.state = state;
    this.zxid++;
    this.sim.record({ kind: `locks.session-${state}`, session: session.id });
    for (const name of [...session.locks].sort()) this.deleteNode(name, state);
    if (state === 'expired') session.notify(session.id);
  }

  private deleteNode(name: string, reason: string): void {
    const node = this.nodes.get(name);
    assert(node !== undefined, `no lock node ${name}`);
    this.nodes.delete(name);
    this.session(node.sessionId).locks.delete(name);
    this.zxid++;
    this.sim.record({
      kind: 'locks.release',
      name,
      token: node.token,
      session: node.sessionId,
      reason,
    });
  }
}

/** A client connection: FIFO request/reply transport bound to one incarnation. */
class SimLocksClient implements Locks {
  /** @internal Sessions to close with the client. */
  readonly sessions = new OpenHandles<SimLockSession>();
  /** Virtual time the last request reaches the server; later requests may not overtake it. */
  private lastRequestDueMs = 0;
  /** Virtual time the last reply or notice reaches the client; later ones may not overtake it. */
  private lastReplyDueMs = 0;

  constructor(
    /** @internal */
    readonly service: LockServer,
    private readonly sim: Simulation,
    /** @internal */
    readonly incarnation: Incarnation,
  ) {}

  async openSession(options: SessionOptions): Promise<LockSession> {
    const { timeoutMs } = options;
    assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be > 0, got ${timeoutMs}`);
    if (this.sessions.closed) throw closedError('openSession', 'the lock client');
    // The client object exists before the request leaves, so that an expiry notice sent before
    // the reply arrives (a client paused mid-call) has somewhere to go.
    const session = new SimLockSession(this, timeoutMs);
    const owner = this.incarnation.label;
    const id = await this.call('open-session', () =>
      this.service.openSession(owner, timeoutMs, (sessionId) =>
        this.sendNotice(session, sessionId),
      ),
    );
    session.start(id);
    if (this.sessions.closed) {
      // The client was closed while the session was being opened: it must not outlive the client.
      await session.close();
      throw closedError('openSession', 'the lock client');
    }
    if (!session.expired) this.sessions.add(session);
    return session;
  }

  close(): Promise<void> {
    return this.sessions.closeAll();
  }

  /**
   * @internal One round trip: `op` runs at the server when the request arrives; its result comes
   * back as an event owned by the incarnation. A dead incarnation's call never settles.
   */
  call<T>(label: string, op: () => T): Promise<T> {
    const { incarnation } = this;
    if (!incarnation.alive) return new Promise<T>(() => {});
    const now = this.sim.scheduler.now;
    const requestDue = Math.max(now + this.service.drawLatency(), this.lastRequestDueMs);
    this.lastRequestDueMs = requestDue;
    const reply = new Promise<T>((resolve) => {
      // A world event: a request on the wire reaches the server whatever happens to its sender.
      this.sim.schedule({
        delayMs: requestDue - now,
        label: `locks.${label}`,
        run: () => {
          const result = op();
          incarnation.schedule(this.replyDelay(), `locks.${label}.reply`, () => resolve(result));
        },
      });
    });
    return incarnation.guard(reply);
  }

  /** Sends a session's expiry notice down this connection, through the fault seam. */
  private sendNotice(session: SimLockSession, sessionId: string): void {
    if (!this.incarnation.alive) return;
    const notice: ExpiryNotice = {
      sessionId,
      owner: this.incarnation.label,
      delayMs: this.replyDelay(),
    };
    for (const delayMs of this.service.noticeDelays(notice)) {
      assert(Number.isFinite(delayMs) && delayMs >= 0, `notice filter returned delay ${delayMs}`);
      this.incarnation.schedule(delayMs, 'locks.expired-notice', () => session.learnExpired());
    }
  }

  /** Delay of the next server-to-client message, FIFO after the previous one. */
  private replyDelay(): number {
    const now = this.sim.scheduler.now;
    const due = Math.max(now + this.service.drawLatency(), this.lastReplyDueMs);
    this.lastReplyDueMs = due;
    return due - now;
  }
}

/** A client session: heartbeats from its incarnation while open, learns of expiry from the server. */
class SimLockSession implements LockSession {
  private sessionId: string | null = null;
  private isExpired = false;
  private isClosed = false;
  private readonly handlers: (() => void)[] = [];
  private readonly notified = new Set<() => void>();

  constructor(
    private readonly client: SimLocksClient,
    private readonly timeoutMs: number,
  ) {}

  get id(): string {
    assert(this.sessionId !== null, 'session id read before the session was opened');
    return this.sessionId;
  }

  get expired(): boolean {
    return this.isExpired;
  }

  /** @internal Called with the server's id once the open-session reply arrives. */
  start(id: string): void {
    this.sessionId = id;
    if (!this.isExpired) void this.heartbeat(id);
  }

  async tryAcquire(name: string): Promise<Lease | null> {
    assert(name.length > 0, 'lock name must be non-empty');
    this.throwIfUnusable('tryAcquire');
    const id = this.id;
    const outcome = await this.client.call('acquire', () => this.client.service.acquire(id, name));
    switch (outcome.kind) {
      case 'granted':
        return { name, token: outcome.token };
      case 'busy':
        return null;
      case 'gone':
        this.learnGone(outcome.state);
        this.throwIfUnusable('tryAcquire');
        throw new AssertionError('unreachable: a gone session is unusable');
    }
  }

  async release(lease: Lease): Promise<void> {
    // Without a live session there is nothing to release: its nodes are gone already.
    if (this.isExpired || this.isClosed) return;
    const id = this.id;
    const outcome = await this.client.call('release', () => this.client.service.release(id, lease));
    if (outcome.kind === 'gone') this.learnGone(outcome.state);
  }

  async holds(lease: Lease): Promise<boolean> {
    if (this.isExpired || this.isClosed) return false;
    const id = this.id;
    const outcome = await this.client.call('holds', () => this.client.service.holds(id, lease));
    if (outcome.kind === 'gone') this.learnGone(outcome.state);
    return outcome.holds;
  }

  onExpired(handler: () => void): void {
    this.handlers.push(handler);
    if (this.isExpired) {
      // Already known: call it soon, never from inside the registration itself.
      const { incarnation } = this.client;
      void Promise.resolve().then(() => incarnation.deliver(() => this.notify(handler)));
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.client.sessions.forget(this);
    if (this.isExpired) return;
    const id = this.id;
    await this.client.call('close-session', () => this.client.service.close(id));
  }

  /** @internal The server says the session has expired (its notice, or a reply to any request). */
  learnExpired(): void {
    if (this.isExpired || this.isClosed) return;
    this.isExpired = true;
    this.client.sessions.forget(this);
    this.client.incarnation.record({ kind: 'locks.expiry-seen', session: this.sessionId });
    for (const handler of [...this.handlers]) this.notify(handler);
  }

  private learnGone(state: 'expired' | 'closed'): void {
    // Only this client closes its session, so the server cannot report it closed behind our back.
    assert(state === 'expired' || this.isClosed, `session ${this.id} closed behind its client`);
    if (state === 'expired') this.learnExpired();
  }

  /** Calls `handler` at most once, whatever path told us of the expiry. */
  private notify(handler: () => void): void {
    if (this.notified.has(handler)) return;
    this.notified.add(handler);
    handler();
  }

  private throwIfUnusable(operation: string): void {
    if (this.isClosed) throw closedError(operation, `session ${this.sessionId ?? '(opening)'}`);
    if (this.isExpired) {
      throw new PortError('locks.session-expired', `${operation}: session ${this.id} has expired`, {
        retryable: false,
      });
    }
  }

  /** Keeps the session alive with a ping every timeout/3 while the incarnation runs. */
  private async heartbeat(id: string): Promise<void> {
    const { incarnation } = this.client;
    const intervalMs = this.timeoutMs / HEARTBEATS_PER_TIMEOUT;
    while (!this.isClosed && !this.isExpired) {
      // A paused or dead incarnation stays parked here: that is how its session comes to expire.
      await incarnation.sleep(intervalMs);
      if (this.isClosed || this.isExpired) return;
      const outcome = await this.client.call('heartbeat', () => this.client.service.touch(id));
      if (outcome.kind === 'gone') this.learnGone(outcome.state);
    }
  }
}

function closedError(operation: string, what: string): PortError {
  return new PortError('locks.closed', `${operation}: ${what} is closed`, { retryable: false });
}
