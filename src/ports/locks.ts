/**
 * Locks with fencing, ZooKeeper semantics. A client opens a session that stays alive while it
 * heartbeats; locks are ephemeral nodes of the session and vanish when it expires (a paused or
 * partitioned holder loses them without knowing). Every grant carries a fencing token, strictly
 * increasing per lock across holders; stores and agents reject writes with a token older than the
 * newest they have seen, which is what stops a holder that lost its lock but keeps acting.
 */

/** A held lock. */
export interface Lease {
  /** The lock's name, e.g. a resource id. */
  readonly name: string;
  /** Fencing token: greater than any token previously granted for this lock. */
  readonly token: number;
}

/** Options for {@link Locks.openSession}. */
export interface SessionOptions {
  /** How long the session survives without a heartbeat, in ms. ZooKeeper's negotiated timeout. */
  readonly timeoutMs: number;
}

/** A client session. Locks it holds are released when it closes or expires. */
export interface LockSession {
  readonly id: string;
  /** True once the service has expired this session; its leases are void. */
  readonly expired: boolean;
  /** Takes `name` if free (never blocks); null if another session holds it. Re-entrant for the holder. */
  tryAcquire(name: string): Promise<Lease | null>;
  /** Releases a lease this session holds. Releasing a lease it no longer holds is a no-op. */
  release(lease: Lease): Promise<void>;
  /** Whether the service still considers this session the holder of `lease`. */
  holds(lease: Lease): Promise<boolean>;
  /** Called once when the session expires (may be late: watch notifications can be lost). */
  onExpired(handler: () => void): void;
  /** Closes the session and releases its locks. */
  close(): Promise<void>;
}

export interface Locks {
  openSession(options: SessionOptions): Promise<LockSession>;
  /** Releases connections. */
  close(): Promise<void>;
}
