// Goal: the Bus port's contract — Redis pub/sub semantics every implementation must show, sim or
// real. Method: a function that registers vitest tests against a harness factory; each test gets a
// fresh harness (its own server or namespace), opens several connections, and waits for deliveries
// through `settle`, which drives the simulation (or simply awaits, for a real Redis). Absence of a
// delivery is proven with a barrier: a later message on the same path that must arrive after it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Bus, BusHandler, BusMessage } from '../../src/ports/bus.ts';

/** Options for {@link BusConnector.connect}. */
export interface BusConnectOptions {
  /**
   * An isolated channel namespace (the implementation's channel prefix). Buses in the same
   * namespace share channels; buses in different ones never see each other. Default: one shared
   * namespace per harness.
   */
  readonly namespace?: string;
}

/** What a harness offers: connections to one server. */
export interface BusConnector {
  /** Opens a new connection (its own publisher and subscriber) to the harness's server. */
  connect(options?: BusConnectOptions): Promise<Bus>;
  /**
   * Publishes `payload` verbatim (not JSON-encoded by the adapter) on `channel` of `namespace`, as
   * a foreign client would. Resolves with the receiver count.
   */
  publishRaw(channel: string, payload: string, options?: BusConnectOptions): Promise<number>;
}

/** A fresh world for one test. */
export interface BusHarness {
  readonly impl: BusConnector;
  /** Resolves or rejects as `promise` does, driving the world until it settles (fails if it cannot). */
  settle<T>(promise: Promise<T>): Promise<T>;
  /** Lets `ms` of (virtual or real) time pass. */
  advance?(ms: number): Promise<void>;
  /** Closes everything the harness opened. */
  cleanup(): Promise<void>;
}

export type BusHarnessFactory = () => Promise<BusHarness>;

interface Received {
  readonly channel: string;
  readonly message: BusMessage;
}

/** A handler that records what it receives and lets a test wait for a count. */
class Collector {
  readonly received: Received[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly handler: BusHandler = (message, channel) => {
    this.received.push({ channel, message });
    const ready = this.waiters.filter((w) => this.received.length >= w.count);
    this.waiters = this.waiters.filter((w) => this.received.length < w.count);
    for (const waiter of ready) waiter.resolve();
  };

  /** Resolves once at least `count` messages have arrived. */
  waitFor(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  get messages(): BusMessage[] {
    return this.received.map((r) => r.message);
  }
}

/** Registers the Bus contract for implementation `name`. */
export function busContract(name: string, factory: BusHarnessFactory): void {
  describe(`Bus contract: ${name}`, () => {
    let h: BusHarness;
    beforeEach(async () => {
      h = await factory();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const connect = (options?: BusConnectOptions): Promise<Bus> =>
      h.settle(h.impl.connect(options));

    it('delivers messages published after the subscription, in publish order, and none before', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const before = await h.settle(publisher.publish('c', { type: 'before', n: 0 }));
      expect(before).toBe(0);
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c', inbox.handler));
      const counts: number[] = [];
      for (let n = 1; n <= 20; n++) {
        counts.push(await h.settle(publisher.publish('c', { type: 'after', n })));
      }
      await h.settle(inbox.waitFor(20));
      expect(counts).toEqual(Array.from({ length: 20 }, () => 1));
      expect(inbox.messages).toEqual(
        Array.from({ length: 20 }, (_, i) => ({ type: 'after', n: i + 1 })),
      );
      expect(inbox.received.every((r) => r.channel === 'c')).toBe(true);
    });

    it("keeps each publisher's order when publishers interleave without waiting", async () => {
      const [p1, p2, subscriber] = await Promise.all([connect(), connect(), connect()]);
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c', inbox.handler));
      // Fired back to back without awaiting: order is the order of the calls per connection.
      const sends: Promise<number>[] = [];
      for (let n = 0; n < 30; n++) {
        sends.push(p1.publish('c', { type: 'm', from: 'p1', n }));
        sends.push(p2.publish('c', { type: 'm', from: 'p2', n }));
      }
      await h.settle(Promise.all(sends));
      await h.settle(inbox.waitFor(60));
      for (const from of ['p1', 'p2']) {
        const seq = inbox.messages.filter((m) => m['from'] === from).map((m) => m['n']);
        expect(seq).toEqual(Array.from({ length: 30 }, (_, i) => i));
      }
    });

    it('gives every subscriber its own copy and counts receivers', async () => {
      const publisher = await connect();
      const subscribers = await Promise.all([connect(), connect(), connect()]);
      const inboxes = subscribers.map(() => new Collector());
      for (const [i, bus] of subscribers.entries()) {
        await h.settle(bus.subscribe('c', inboxes[i]!.handler));
      }
      expect(await h.settle(publisher.publish('c', { type: 'x', v: 1 }))).toBe(3);
      for (const inbox of inboxes) {
        await h.settle(inbox.waitFor(1));
        expect(inbox.messages).toEqual([{ type: 'x', v: 1 }]);
      }
    });

    it('counts connections, not handlers: two handlers on one connection both receive', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const a = new Collector();
      const b = new Collector();
      await h.settle(subscriber.subscribe('c', a.handler));
      await h.settle(subscriber.subscribe('c', b.handler));
      expect(await h.settle(publisher.publish('c', { type: 'x' }))).toBe(1);
      await h.settle(Promise.all([a.waitFor(1), b.waitFor(1)]));
      expect(a.messages).toEqual([{ type: 'x' }]);
      expect(b.messages).toEqual([{ type: 'x' }]);
    });

    it('stops delivery on unsubscribe, idempotently', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const gone = new Collector();
      const stays = new Collector();
      const subscription = await h.settle(subscriber.subscribe('c', gone.handler));
      await h.settle(subscriber.subscribe('c', stays.handler));
      await h.settle(publisher.publish('c', { type: 'one' }));
      await h.settle(Promise.all([gone.waitFor(1), stays.waitFor(1)]));

      await h.settle(subscription.unsubscribe());
      await h.settle(subscription.unsubscribe());
      await h.settle(publisher.publish('c', { type: 'two' }));
      // `stays` shares the connection: once it has `two`, `gone` would have had it too.
      await h.settle(stays.waitFor(2));
      expect(gone.messages).toEqual([{ type: 'one' }]);
      expect(stays.messages).toEqual([{ type: 'one' }, { type: 'two' }]);
    });

    it('unsubscribes the connection when its last handler leaves', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const inbox = new Collector();
      const subscription = await h.settle(subscriber.subscribe('c', inbox.handler));
      expect(await h.settle(publisher.publish('c', { type: 'one' }))).toBe(1);
      await h.settle(subscription.unsubscribe());
      expect(await h.settle(publisher.publish('c', { type: 'two' }))).toBe(0);
      // Resubscribing works and sees only what comes after.
      const again = new Collector();
      await h.settle(subscriber.subscribe('c', again.handler));
      expect(await h.settle(publisher.publish('c', { type: 'three' }))).toBe(1);
      await h.settle(again.waitFor(1));
      expect(again.messages).toEqual([{ type: 'three' }]);
    });

    it('round-trips JSON messages exactly', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c', inbox.handler));
      const fixed: BusMessage[] = [
        { type: 'vm.start', id: 'vm-1', token: 42, force: false, note: null },
        { type: 'nested', a: [1, -2.5, 1e21, 'x', [true, null, { b: {} }]], s: '' },
        { type: 'unicode', s: 'é ü 中文 🚀 \u0000 \n "quoted" \\' },
      ];
      const generated = fc.sample(
        fc.record({ type: fc.string(), body: fc.jsonValue() }) as fc.Arbitrary<BusMessage>,
        { seed: 7, numRuns: 40 },
      );
      const all = [...fixed, ...generated];
      for (const message of all) await h.settle(publisher.publish('c', message));
      await h.settle(inbox.waitFor(all.length));
      expect(inbox.messages).toEqual(all);
    });

    it('isolates channels', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c1', inbox.handler));
      expect(await h.settle(publisher.publish('c2', { type: 'other' }))).toBe(0);
      expect(await h.settle(publisher.publish('c1', { type: 'mine' }))).toBe(1);
      await h.settle(inbox.waitFor(1));
      expect(inbox.received).toEqual([{ channel: 'c1', message: { type: 'mine' } }]);
    });

    it('isolates namespaces (channel prefixes) on one server', async () => {
      const publisherA = await connect({ namespace: 'a' });
      const publisherB = await connect({ namespace: 'b' });
      const subscriberA = await connect({ namespace: 'a' });
      const inbox = new Collector();
      await h.settle(subscriberA.subscribe('c', inbox.handler));
      expect(await h.settle(publisherB.publish('c', { type: 'from-b' }))).toBe(0);
      expect(await h.settle(publisherA.publish('c', { type: 'from-a' }))).toBe(1);
      await h.settle(inbox.waitFor(1));
      // Handlers see the logical channel name, without the prefix.
      expect(inbox.received).toEqual([{ channel: 'c', message: { type: 'from-a' } }]);
    });

    it('drops malformed incoming messages without disturbing the subscriber', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c', inbox.handler));
      for (const payload of [
        'not json {',
        '[1,2]',
        '"text"',
        'null',
        '{"no":"type"}',
        '{"type":3}',
      ]) {
        expect(await h.settle(h.impl.publishRaw('c', payload))).toBe(1);
      }
      await h.settle(publisher.publish('c', { type: 'ok' }));
      await h.settle(inbox.waitFor(1));
      expect(inbox.messages).toEqual([{ type: 'ok' }]);
    });

    it('ends subscriptions on close and rejects use of a closed bus', async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const inbox = new Collector();
      await h.settle(subscriber.subscribe('c', inbox.handler));
      await h.settle(subscriber.close());
      await h.settle(subscriber.close());
      expect(await h.settle(publisher.publish('c', { type: 'after-close' }))).toBe(0);
      await expect(h.settle(subscriber.publish('c', { type: 'x' }))).rejects.toMatchObject({
        code: 'bus.closed',
        retryable: false,
      });
      expect(inbox.messages).toEqual([]);
    });
  });
}
