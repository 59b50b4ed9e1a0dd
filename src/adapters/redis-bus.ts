/**
 * The Bus port over Redis pub/sub. One adapter serves both worlds: in staging it runs over two
 * `ioredis` connections to a real Redis, in the simulator over two connections to an in-memory
 * Redis pub/sub server (memory-pubsub.ts) that src/sim/sim-bus.ts routes through the scheduler.
 * The clients are typed structurally, with only the methods used here, so ioredis, ioredis-mock
 * and the in-memory server all fit and this file loads no driver.
 *
 * Two connections because a Redis connection in subscriber mode may issue nothing but
 * (UN)SUBSCRIBE: one publishes, one subscribes. Messages travel as JSON; an incoming message that
 * is not a JSON object with a string `type` is dropped, counted and logged, never thrown at the
 * subscriber. Channel names carry an optional prefix so test runs sharing one Redis never see each
 * other's traffic.
 */
import { PortError, UnavailableError } from '../ports/errors.ts';
import type { Bus, BusHandler, BusMessage, Subscription } from '../ports/bus.ts';
import type { Log } from '../ports/runtime.ts';

/**
 * The slice of an ioredis-compatible client this adapter uses. Both `ioredis` 5 (`Redis`) and
 * `ioredis-mock` 8 satisfy it.
 */
export interface RedisPubSubClient {
  /** PUBLISH: resolves with the number of connections subscribed to `channel`. */
  publish(channel: string, message: string): Promise<number>;
  subscribe(...channels: string[]): Promise<unknown>;
  /** UNSUBSCRIBE; with no channel, from every channel. */
  unsubscribe(...channels: string[]): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  /** Graceful close (QUIT). */
  quit(): Promise<unknown>;
  /** Immediate close, used when QUIT fails. */
  disconnect(): void;
}

/** Options for {@link createRedisBus}. */
export interface RedisBusOptions {
  /** The connection used for PUBLISH. */
  readonly publisher: RedisPubSubClient;
  /** The connection used for SUBSCRIBE; it enters subscriber mode and must not be shared. */
  readonly subscriber: RedisPubSubClient;
  /**
   * Prepended to every channel name on the wire, e.g. `test-7f3a.`. Buses with different prefixes
   * on one Redis never see each other's messages. Default `''`.
   */
  readonly prefix?: string;
  /** Where warnings about dropped incoming messages go. Default: nowhere (they are still counted). */
  readonly log?: Pick<Log, 'warn'>;
}

/** A {@link Bus} over Redis, with counters for what it had to drop. */
export interface RedisBus extends Bus {
  /** Incoming messages dropped because they were not a JSON object with a string `type`. */
  readonly malformedMessages: number;
}

/** Longest excerpt of a malformed payload copied into the log line. */
const MALFORMED_SAMPLE_CHARS = 120;

/** Creates a {@link RedisBus} over two ioredis-compatible connections. */
export function createRedisBus(options: RedisBusOptions): RedisBus {
  return new RedisBusImpl(options);
}

interface HandlerEntry {
  readonly handler: BusHandler;
}

/** Per wire channel: local handlers and the server-side subscription they need. */
interface ChannelState {
  readonly handlers: Set<HandlerEntry>;
  /** Whether the last SUBSCRIBE/UNSUBSCRIBE that succeeded left the channel subscribed. */
  subscribed: boolean;
  /**
   * Tail of this channel's SUBSCRIBE/UNSUBSCRIBE commands. They are chained so that a subscribe
   * racing an unsubscribe of the same channel leaves the server in the state the handlers need.
   */
  chain: Promise<void>;
}

class RedisBusImpl implements RedisBus {
  private readonly publisher: RedisPubSubClient;
  private readonly subscriber: RedisPubSubClient;
  private readonly prefix: string;
  private readonly log: Pick<Log, 'warn'> | undefined;
  private readonly channels = new Map<string, ChannelState>();
  private closed = false;
  private malformed = 0;

  constructor(options: RedisBusOptions) {
    this.publisher = options.publisher;
    this.subscriber = options.subscriber;
    this.prefix = options.prefix ?? '';
    this.log = options.log;
    this.subscriber.on('message', (channel, payload) => this.dispatch(channel, payload));
  }

  get malformedMessages(): number {
    return this.malformed;
  }

  async publish(channel: string, message: BusMessage): Promise<number> {
    this.assertOpen('publish');
    const payload = encode(message);
    try {
      return await this.publisher.publish(this.prefix + channel, payload);
    } catch (error) {
      throw toPortError(`publish to ${channel}`, error);
    }
  }

  async subscribe(channel: string, handler: BusHandler): Promise<Subscription> {
    this.assertOpen('subscribe');
    const wire = this.prefix + channel;
    let state = this.channels.get(wire);
    if (state === undefined) {
      state = { handlers: new Set(), subscribed: false, chain: Promise.resolve() };
      this.channels.set(wire, state);
    }
    const entry: HandlerEntry = { handler };
    // Registered before SUBSCRIBE is sent: nothing arrives on the channel before the server has
    // processed it, and the handler must not miss what arrives right after.
    state.handlers.add(entry);
    try {
      await this.reconcile(wire, state);
    } catch (error) {
      state.handlers.delete(entry);
      throw toPortError(`subscribe to ${channel}`, error);
    }
    const channelState = state;
    return {
      unsubscribe: async (): Promise<void> => {
        // Idempotent: only the first call removes the handler; a closed bus has nothing left.
        if (!channelState.handlers.delete(entry) || this.closed) return;
        try {
          await this.reconcile(wire, channelState);
        } catch (error) {
          // The handler is already inert; the server may keep sending until it reconnects.
          throw toPortError(`unsubscribe from ${channel}`, error);
        }
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Handlers go inert at once: a message already on its way is not delivered after close.
    for (const state of this.channels.values()) state.handlers.clear();
    this.channels.clear();
    // UNSUBSCRIBE before QUIT: ioredis-mock's disconnect forgets the client but leaves its channel
    // listeners behind (it would keep counting and receiving); real Redis does not mind.
    await this.subscriber.unsubscribe().catch(ignore);
    await Promise.all([quitClient(this.publisher), quitClient(this.subscriber)]);
  }

  /** Sends SUBSCRIBE or UNSUBSCRIBE if the channel's handlers need a different server state. */
  private reconcile(wire: string, state: ChannelState): Promise<void> {
    const run = state.chain.then(async () => {
      const wanted = state.handlers.size > 0 && !this.closed;
      if (wanted === state.subscribed) return;
      if (wanted) await this.subscriber.subscribe(wire);
      else await this.subscriber.unsubscribe(wire);
      state.subscribed = wanted;
    });
    state.chain = run.catch(ignore);
    return run;
  }

  /** Decodes one incoming message and hands it to the channel's handlers in subscription order. */
  private dispatch(wire: string, payload: string): void {
    const state = this.channels.get(wire);
    if (state === undefined || state.handlers.size === 0) return;
    const message = decode(payload);
    if (message === undefined) {
      this.malformed++;
      this.log?.warn('bus.malformed-message', {
        channel: wire,
        sample: payload.slice(0, MALFORMED_SAMPLE_CHARS),
        dropped: this.malformed,
      });
      return;
    }
    const channel = wire.startsWith(this.prefix) ? wire.slice(this.prefix.length) : wire;
    let failure: { error: unknown } | undefined;
    for (const entry of [...state.handlers]) {
      // A handler may unsubscribe another during this loop; that one must not be called.
      if (!state.handlers.has(entry)) continue;
      try {
        entry.handler(message, channel);
      } catch (error) {
        failure ??= { error };
      }
    }
    // A throwing handler is a bug in it: the other handlers still get the message, then the error
    // surfaces where the client library emits (in the simulator: a crash verdict).
    if (failure !== undefined) throw failure.error;
  }

  private assertOpen(operation: string): void {
    if (this.closed) {
      throw new PortError('bus.closed', `cannot ${operation}: the bus is closed`, {
        retryable: false,
      });
    }
  }
}

/** JSON-encodes a message; a message that cannot be encoded is the caller's bug, reported as data. */
function encode(message: BusMessage): string {
  try {
    return JSON.stringify(message);
  } catch (error) {
    throw new PortError('bus.invalid-message', `message of type ${message.type} is not JSON`, {
      retryable: false,
      cause: error,
    });
  }
}

/** Parses a payload into a message, or undefined if it is not a JSON object with a string `type`. */
function decode(payload: string): BusMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  if (typeof (value as { type?: unknown }).type !== 'string') return undefined;
  return value as BusMessage;
}

/** Wraps a driver failure as retryable unavailability; port errors pass through unchanged. */
function toPortError(operation: string, error: unknown): PortError {
  if (error instanceof PortError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new UnavailableError('bus', `${operation} failed: ${reason}`, error);
}

/** QUIT, falling back to an immediate disconnect: closing never fails. */
async function quitClient(client: RedisPubSubClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    try {
      client.disconnect();
    } catch {
      // Already gone: nothing left to close.
    }
  }
}

function ignore(): void {}
