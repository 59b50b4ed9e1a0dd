/**
 * A Redis server's publish/subscribe, in memory: what the simulated bus (src/sim/sim-bus.ts) runs
 * the production Redis adapter (redis-bus.ts) against. The adapter uses PUBLISH, SUBSCRIBE,
 * UNSUBSCRIBE and QUIT on two connections and nothing else of Redis, so this is all of Redis it
 * needs, with Redis's semantics for them (the bus contract suite runs the same cases here and
 * against a real Redis):
 *
 * - PUBLISH answers the number of connections subscribed to the channel and pushes the message to
 *   each of them, in the order they subscribed; a connection in subscriber mode cannot PUBLISH;
 * - SUBSCRIBE and UNSUBSCRIBE answer how many channels the connection is subscribed to afterwards;
 *   UNSUBSCRIBE with no channel leaves all of them; subscribing twice to a channel is one
 *   subscription;
 * - QUIT (and a dropped connection) ends every subscription of the connection at once.
 *
 * Like a Node Redis client, a command runs at the server when called and its reply is a promise;
 * a pushed message reaches the connection's `message` listeners on a later `process.nextTick`, as
 * a socket read would (the simulator drains ticks within a step: src/sim/quiesce.ts). A general-purpose
 * mock builds hundreds of command closures per connection; a simulated cloud opens two
 * connections per process incarnation, thousands per fuzzing campaign, so this keeps to what is
 * used.
 */
import type { RedisPubSubClient } from './redis-bus.ts';

/** Redis's answer to a command other than (UN)SUBSCRIBE, PING or QUIT in subscriber mode. */
export const SUBSCRIBER_MODE_ERROR =
  "ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context";

/** What a closed connection answers to a command. */
export const CONNECTION_CLOSED_ERROR = 'Connection is closed.';

/** One Redis server's channels. */
export class PubSubServer {
  /** Per channel, its subscribed connections in the order they subscribed. */
  private readonly subscribers = new Map<string, Set<PubSubConnection>>();

  /** A new connection to this server. */
  connect(): PubSubConnection {
    return new PubSubConnection(this);
  }

  /** @internal PUBLISH at the server. */
  publishNow(channel: string, message: string): number {
    const connections = this.subscribers.get(channel);
    if (connections === undefined) return 0;
    for (const connection of connections) connection.push(channel, message);
    return connections.size;
  }

  /** @internal SUBSCRIBE of one channel. */
  add(connection: PubSubConnection, channel: string): void {
    let connections = this.subscribers.get(channel);
    if (connections === undefined) {
      connections = new Set();
      this.subscribers.set(channel, connections);
    }
    connections.add(connection);
  }

  /** @internal UNSUBSCRIBE of one channel. */
  remove(connection: PubSubConnection, channel: string): void {
    const connections = this.subscribers.get(channel);
    if (connections === undefined) return;
    connections.delete(connection);
    if (connections.size === 0) this.subscribers.delete(channel);
  }
}

/** One client connection: the surface of a Node Redis client the adapter uses. */
export class PubSubConnection implements RedisPubSubClient {
  private readonly channels = new Set<string>();
  private readonly listeners: ((channel: string, message: string) => void)[] = [];
  private open = true;

  constructor(private readonly server: PubSubServer) {}

  /** True until QUIT or a disconnect. */
  get connected(): boolean {
    return this.open;
  }

  publish(channel: string, message: string): Promise<number> {
    return this.command(() => {
      if (this.channels.size > 0) throw new Error(SUBSCRIBER_MODE_ERROR);
      return this.server.publishNow(channel, message);
    });
  }

  subscribe(...channels: string[]): Promise<number> {
    return this.command(() => {
      for (const channel of channels) {
        this.channels.add(channel);
        this.server.add(this, channel);
      }
      return this.channels.size;
    });
  }

  unsubscribe(...channels: string[]): Promise<number> {
    return this.command(() => {
      for (const channel of channels.length === 0 ? [...this.channels] : channels) {
        this.channels.delete(channel);
        this.server.remove(this, channel);
      }
      return this.channels.size;
    });
  }

  on(event: 'message', listener: (channel: string, message: string) => void): this {
    if (event === 'message') this.listeners.push(listener);
    return this;
  }

  quit(): Promise<'OK'> {
    return this.command(() => {
      this.disconnect();
      return 'OK' as const;
    });
  }

  /** Drops the connection: every subscription ends at once; later commands fail. */
  disconnect(): void {
    for (const channel of this.channels) this.server.remove(this, channel);
    this.channels.clear();
    this.open = false;
  }

  /** @internal The server pushes a message: it is read on a later tick, if still connected. */
  push(channel: string, message: string): void {
    process.nextTick(() => {
      if (!this.open) return;
      for (const listener of this.listeners) listener(channel, message);
    });
  }

  /** Runs a command at the server now; its reply (or error) comes as a promise. */
  private command<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve) => {
      if (!this.open) throw new Error(CONNECTION_CLOSED_ERROR);
      resolve(run());
    });
  }
}
