/**
 * The handles a client has opened and must close with itself — the sessions of a lock client. Both
 * lock clients (the simulated one and ZooKeeper's) keep their sessions here, so both close alike:
 * closing the client closes every handle still open, concurrently, and it stays closed.
 */

/** Anything with an asynchronous close. */
export interface Closable {
  close(): Promise<void>;
}

/** A client's open handles, in the order they were added. */
export class OpenHandles<H extends Closable> {
  private isClosed = false;
  private readonly open = new Set<H>();

  /**
   * True once {@link closeAll} was called. A handle whose opening finishes after that must be
   * closed by its opener, not added: it must not outlive its client.
   */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Keeps `handle` until it is forgotten or closed with the rest. */
  add(handle: H): void {
    this.open.add(handle);
  }

  /** The handle closed (or ended) by itself: it no longer needs closing. */
  forget(handle: H): void {
    this.open.delete(handle);
  }

  /** Closes every open handle, concurrently; later calls do nothing. */
  async closeAll(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.all([...this.open].map((handle) => handle.close()));
  }
}
