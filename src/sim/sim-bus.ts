/**
 * The bus inside the simulator: the production Redis adapter (src/adapters/redis-bus.ts) over an
 * in-memory Redis pub/sub server (src/adapters/memory-pubsub.ts), with the network between the
 * server and each process routed through the scheduler. The same adapter code runs here and in
 * staging; only the server and the wire are simulated.
 *
 * A {@link SimBus} is one Redis server, held as world state. {@link SimBus.busFor} gives a process
 * incarnation its own connections (a publisher and a subscriber client) wrapped so that:
 * - every command runs at the server when called, and its reply comes back after a latency as an
 *   event owned by the incarnation (and through `guard`): a crashed process never sees a reply, a
 *   paused one sees it on resume;
 * - every message the server pushes to a subscriber becomes a scheduler event owned by the
 *   subscriber's incarnation, after a latency drawn from the bus's own PRNG fork. Delivery happens
 *   in the scheduler's total order; a crashed subscriber receives nothing, a paused one later.
 *   What the server sends on one connection — pushed messages and replies — keeps the server's
 *   order (one TCP stream), as Redis guarantees;
 * - a dead incarnation's connections are closed at the server before the next command, as the
 *   operating system closes a crashed process's sockets, so PUBLISH stops counting them.
 *
 * The fault seam is {@link DeliveryFilter}: it sees each message on its way to one subscriber and
 * returns when to deliver its copies — none (drop), several (duplicate), later (delay), out of
 * order (reorder); a window of drops for one subscriber is a disconnect (ioredis reconnects and
 * resubscribes by itself, losing what was published meanwhile). Publish-side faults (a failing or
 * slow PUBLISH) decorate the Bus port instead. {@link SimBus.publishRaw} injects arbitrary
 * payloads, e.g. corrupt ones.
 *
 * The server pushes messages with `process.nextTick`, as a socket read would come later; the
 * scheduler drains ticks within the step (quiesce.ts).
 */
import { PubSubServer, type PubSubConnection } from '../adapters/memory-pubsub.ts';
import { createRedisBus, type RedisBus, type RedisPubSubClient } from '../adapters/redis-bus.ts';
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import type { Incarnation } from './process.ts';
import type { Simulation } from './simulation.ts';
import { assertLatencyRange, sampleLatency, type LatencyRange } from './latency-range.ts';

/** One message on its way from the server to one subscriber connection. */
export interface BusDelivery {
  /** The channel as on the wire, prefix included. */
  readonly channel: string;
  /** The encoded message exactly as published. */
  readonly payload: string;
  /** The subscribing incarnation's label, e.g. `agent-h1#2`. */
  readonly subscriber: string;
  /** The delay the healthy network would apply, in virtual ms from now (>= 0, FIFO per connection). */
  readonly delayMs: number;
}

/**
 * Decides the fate of one delivery: the delays, in virtual ms from now (each >= 0), at which to
 * deliver copies. `[]` drops it, two entries duplicate it, a delay beyond later messages' reorders
 * it. The healthy network is `(d) => [d.delayMs]`. Must be deterministic (draw from a PRNG fork).
 */
export type DeliveryFilter = (delivery: BusDelivery) => readonly number[];

/** Default server-to-subscriber latency: a fast local network. */
export const BUS_LATENCY_DEFAULT: LatencyRange = { minMs: 0.2, maxMs: 2 };

/** Options for {@link SimBus}. */
export interface SimBusOptions {
  readonly sim: Simulation;
  /** Server-to-subscriber latency. Default {@link BUS_LATENCY_DEFAULT}. */
  readonly latency?: LatencyRange;
  /** Initial delivery filter; none means the healthy network. See {@link SimBus.setDeliveryFilter}. */
  readonly deliveryFilter?: DeliveryFilter;
}

/** Options for {@link SimBus.busFor}. */
export interface SimBusConnectOptions {
  /** Channel prefix, as {@link RedisBusOptions.prefix}. Default `''`. */
  readonly prefix?: string;
}

/** Counters for checkers and reports. */
export interface SimBusStats {
  /** PUBLISH commands that reached the server (including raw ones). */
  readonly published: number;
  /** Copies handed to a subscriber connection. */
  readonly delivered: number;
  /** Deliveries the filter dropped. */
  readonly dropped: number;
  /** Extra copies the filter created. */
  readonly duplicated: number;
  /** Deliveries that found the subscriber's connection closed (or the subscriber dead) on arrival. */
  readonly discarded: number;
}

/** A connection to the in-memory server. */
type ServerClient = PubSubConnection;

/** One TCP stream from the server to a client: what it sends arrives in order. */
interface Link {
  /** Virtual time the last message on this link is due; later ones may not overtake it. */
  lastDueMs: number;
}

/** One process's pair of connections to the server. */
interface Connection {
  readonly incarnation: Incarnation;
  readonly publisher: ServerClient;
  readonly subscriber: ServerClient;
  /** Replies to the publisher's commands. */
  readonly publisherLink: Link;
  /** Replies to the subscriber's commands and pushed messages, in one order, as on one socket. */
  readonly subscriberLink: Link;
  open: boolean;
}

/** A simulated Redis server whose pub/sub is delivered through the scheduler. */
export class SimBus {
  private readonly sim: Simulation;
  private readonly server = new PubSubServer();
  private readonly random: Prng;
  private readonly latency: LatencyRange;
  private filter: DeliveryFilter | null;
  /** Open connections in creation order, so sweeps run in a deterministic order. */
  private readonly connections = new Set<Connection>();
  /** A client that only publishes raw payloads for {@link SimBus.publishRaw}. */
  private injector: ServerClient | null = null;
  /** {@link Simulation.ended} when the connections were last swept. */
  private sweptAt = -1;
  private counters = { published: 0, delivered: 0, dropped: 0, duplicated: 0, discarded: 0 };

  constructor(options: SimBusOptions) {
    this.sim = options.sim;
    this.random = options.sim.random.fork('bus');
    this.latency = options.latency ?? BUS_LATENCY_DEFAULT;
    assertLatencyRange(this.latency, 'bus');
    this.filter = options.deliveryFilter ?? null;
  }

  /**
   * A Bus for `incarnation`: the production adapter over two fresh connections owned by it. Its
   * results and deliveries reach the incarnation only while it lives; log lines go to its trace.
   */
  busFor(incarnation: Incarnation, options: SimBusConnectOptions = {}): RedisBus {
    assert(incarnation.alive, `busFor: ${incarnation.label} is not alive`);
    const connection: Connection = {
      incarnation,
      publisher: this.newClient(),
      subscriber: this.newClient(),
      publisherLink: { lastDueMs: 0 },
      subscriberLink: { lastDueMs: 0 },
      open: true,
    };
    this.connections.add(connection);
    return createRedisBus({
      publisher: this.wrap(connection, connection.publisher, connection.publisherLink),
      subscriber: this.wrap(connection, connection.subscriber, connection.subscriberLink),
      prefix: options.prefix ?? '',
      log: incarnation.runtime.log,
    });
  }

  /** Replaces the delivery filter (null: the healthy network), e.g. when a fault phase starts or heals. */
  setDeliveryFilter(filter: DeliveryFilter | null): void {
    this.filter = filter;
  }

  /**
   * Publishes `payload` verbatim on wire channel `channel` (prefix included), as a foreign client
   * would: for injecting malformed or foreign messages. Resolves with the receiver count.
   */
  publishRaw(channel: string, payload: string): Promise<number> {
    this.sweep();
    this.injector ??= this.newClient();
    this.counters.published++;
    return this.injector.publish(channel, payload);
  }

  /** Counters since the bus was created. */
  stats(): SimBusStats {
    return { ...this.counters };
  }

  /** Number of connection pairs open at the server (those of dead incarnations are closed first). */
  openConnectionCount(): number {
    this.sweep();
    return this.connections.size;
  }

  /** Closes every connection at the server. For tearing a world down; handles become inert. */
  close(): void {
    for (const connection of [...this.connections]) this.closeAtServer(connection);
    this.injector?.disconnect();
    this.injector = null;
  }

  private newClient(): ServerClient {
    return this.server.connect();
  }

  /**
   * The client a process sees. A command runs at the server when called (the in-memory server
   * executes it synchronously); its reply travels back on the connection's link as an event owned by the
   * incarnation, behind any message already pushed on that link — so an UNSUBSCRIBE reply arrives
   * after the messages the server sent before processing it, as on a real socket.
   */
  private wrap(connection: Connection, client: ServerClient, link: Link): RedisPubSubClient {
    const { incarnation } = connection;
    const command = <T>(label: string, send: () => Promise<T>): Promise<T> => {
      // A dead incarnation's code cannot reach the server: its calls go nowhere and never settle.
      if (!incarnation.alive) return new Promise<T>(() => {});
      this.sweep();
      const reply = send().then(
        (value) =>
          new Promise<T>((resolve) => {
            incarnation.schedule(this.linkDelay(link), label, () => resolve(value));
          }),
      );
      return incarnation.guard(reply);
    };
    return {
      publish: (channel, message) =>
        command('bus.publish.reply', () => {
          this.counters.published++;
          return client.publish(channel, message);
        }),
      subscribe: (...channels) =>
        command('bus.subscribe.reply', () => client.subscribe(...channels)),
      unsubscribe: (...channels) =>
        command('bus.unsubscribe.reply', () => client.unsubscribe(...channels)),
      on: (_event, listener) =>
        client.on('message', (channel: string, payload: string) =>
          this.route(connection, channel, payload, listener),
        ),
      // Closing either client closes the process's whole connection pair at the server.
      quit: () =>
        command('bus.quit.reply', async () => {
          const reply = await client.quit();
          this.closeAtServer(connection);
          return reply;
        }),
      disconnect: () => this.closeAtServer(connection),
    };
  }

  /** The delay of the next message on `link`: a latency sample, but never before the previous one. */
  private linkDelay(link: Link): number {
    const now = this.sim.scheduler.now;
    const latency = sampleLatency(this.latency, this.random);
    const due = Math.max(now + latency, link.lastDueMs);
    link.lastDueMs = due;
    return due - now;
  }

  /** Turns a message the server pushed to `connection` into scheduled deliveries. */
  private route(
    connection: Connection,
    channel: string,
    payload: string,
    listener: (channel: string, payload: string) => void,
  ): void {
    const { incarnation } = connection;
    if (!connection.open || !incarnation.alive) {
      this.counters.discarded++;
      return;
    }
    const delivery: BusDelivery = {
      channel,
      payload,
      subscriber: incarnation.label,
      delayMs: this.linkDelay(connection.subscriberLink),
    };
    const delays = this.filter === null ? [delivery.delayMs] : this.filter(delivery);
    if (delays.length === 0) this.counters.dropped++;
    else this.counters.duplicated += delays.length - 1;
    for (const delayMs of delays) {
      assert(Number.isFinite(delayMs) && delayMs >= 0, `delivery filter returned delay ${delayMs}`);
      incarnation.schedule(delayMs, 'bus.deliver', () => {
        if (!connection.open) {
          this.counters.discarded++;
          return;
        }
        this.counters.delivered++;
        listener(channel, payload);
      });
    }
  }

  /**
   * Closes the connections of incarnations that have died, as their sockets would be closed. Looks
   * only when an incarnation ended since the last look: a command costs O(1), not O(connections).
   */
  private sweep(): void {
    const ended = this.sim.ended;
    if (ended === this.sweptAt) return;
    this.sweptAt = ended;
    for (const connection of [...this.connections]) {
      if (!connection.incarnation.alive) this.closeAtServer(connection);
    }
  }

  private closeAtServer(connection: Connection): void {
    if (!connection.open) return;
    // Dropping a connection ends its subscriptions at once, as the server sees the socket close.
    connection.subscriber.disconnect();
    connection.publisher.disconnect();
    connection.open = false;
    this.connections.delete(connection);
  }
}
