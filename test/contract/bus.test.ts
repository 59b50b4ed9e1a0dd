// Goal: show that the simulator's bus — the production Redis adapter over the in-memory Redis
// pub/sub server (src/adapters/memory-pubsub.ts), routed through the scheduler — honours the Bus
// contract, and pin down what only the simulator promises:
// same seed ⇒ same deliveries at the same virtual times; crashed subscribers get nothing, paused
// ones get everything later in order; the delivery-filter seam drops, duplicates and reorders;
// malformed input is counted and logged; separate simulations never share a server. Also checks the
// adapter's own boundary behaviour (error wrapping, close) over plain ioredis-mock, a second
// third-party client it must fit, and the in-memory server's own Redis rules.
// Method: the contract runs on a harness that drives the scheduler until each awaited promise
// settles; the simulator-only cases build small worlds of processes and compare logs and traces.
import {
  CONNECTION_CLOSED_ERROR,
  PubSubServer,
  SUBSCRIBER_MODE_ERROR,
} from '../../src/adapters/memory-pubsub.ts';
import { describe, expect, expectTypeOf, it } from 'vitest';
import RedisMock from 'ioredis-mock';
import type { Redis } from 'ioredis';
import { createRedisBus, type RedisPubSubClient } from '../../src/adapters/redis-bus.ts';
import { PortError, UnavailableError } from '../../src/ports/errors.ts';
import type { BusMessage } from '../../src/ports/bus.ts';
import { SimBus } from '../../src/sim/sim-bus.ts';
import { Simulation } from '../../src/sim/simulation.ts';
import { quiesce } from '../../src/sim/quiesce.ts';
import { settleIn as settleWithin, trackFailures } from '../support/sim-settle.ts';
import type { Incarnation } from '../../src/sim/process.ts';
import { busContract, type BusConnectOptions, type BusHarness } from './bus.contract.ts';

/** How far past "now" a settle may drive virtual time before it gives up. */
const SETTLE_HORIZON_MS = 60_000;

/**
 * Runs settles one after another: two loops stepping one scheduler at once would each see the
 * other's pending work and never find quiescence. A later settle simply continues the stepping.
 */
function serialized(
  settle: <T>(promise: Promise<T>) => Promise<T>,
): <T>(promise: Promise<T>) => Promise<T> {
  let lane: Promise<unknown> = Promise.resolve();
  return <T>(promise: Promise<T>): Promise<T> => {
    const run = lane.then(() => settle(promise));
    lane = run.catch(() => undefined);
    return run;
  };
}

/** Starts a process that does nothing but own port handles the test drives from outside. */
function idleIncarnation(sim: Simulation, name: string): Incarnation {
  return sim.spawn(name, () => new Promise<void>(() => {})).start();
}

function simHarness(seed: number): BusHarness {
  const sim = new Simulation({ seed });
  const failures = trackFailures(sim);
  const bus = new SimBus({ sim });
  const prefixOf = (options?: BusConnectOptions): string =>
    options?.namespace === undefined ? '' : `${options.namespace}.`;
  let clients = 0;
  const settle = serialized(<T>(promise: Promise<T>) =>
    settleWithin(sim, failures, promise, SETTLE_HORIZON_MS),
  );
  return {
    impl: {
      connect: (options) =>
        Promise.resolve(
          bus.busFor(idleIncarnation(sim, `client-${++clients}`), { prefix: prefixOf(options) }),
        ),
      publishRaw: (channel, payload, options) =>
        bus.publishRaw(prefixOf(options) + channel, payload),
    },
    settle,
    advance: (ms) =>
      settle(
        new Promise<void>((resolve) => {
          sim.schedule({ delayMs: ms, label: 'test.advance', run: resolve });
        }),
      ),
    cleanup: () => {
      bus.close();
      return Promise.resolve();
    },
  };
}

busContract('simulated (in-memory pub/sub through the scheduler), seed 1', () =>
  Promise.resolve(simHarness(1)),
);
busContract('simulated (in-memory pub/sub through the scheduler), seed 2', () =>
  Promise.resolve(simHarness(2)),
);

describe('SimBus', () => {
  /** A world: two subscribers and a publisher at fixed times; logs each delivery with its time. */
  async function deliveryWorld(seed: number): Promise<{ log: string[]; hash: string }> {
    const sim = new Simulation({ seed });
    const bus = new SimBus({ sim });
    const log: string[] = [];
    for (const name of ['sub-a', 'sub-b']) {
      sim
        .spawn(name, async (inc) => {
          const b = bus.busFor(inc);
          await b.subscribe('c', (m) => {
            log.push(`${inc.label} ${JSON.stringify(m['n'])} @${sim.scheduler.now}`);
          });
          await inc.sleep(1_000);
          await b.close();
        })
        .start();
    }
    sim
      .spawn('pub', async (inc) => {
        const b = bus.busFor(inc);
        await inc.sleep(10);
        for (let n = 0; n < 10; n++) {
          await b.publish('c', { type: 'tick', n });
          // A burst of two per tick: the second must never overtake the first.
          await b.publish('c', { type: 'tick', n: n + 0.5 });
          await inc.sleep(5);
        }
        await b.close();
      })
      .start();
    const result = await sim.run({ budget: { maxSteps: 10_000, maxSimTimeMs: 10_000 } });
    expect(result.verdict).toBe('ok');
    bus.close();
    return { log, hash: result.traceHash };
  }

  it('is deterministic: same seed, same delivery order and latencies; another seed differs', async () => {
    const a = await deliveryWorld(11);
    const b = await deliveryWorld(11);
    const c = await deliveryWorld(12);
    expect(a.log).toHaveLength(40);
    expect(b.log).toEqual(a.log);
    expect(b.hash).toBe(a.hash);
    // Publish times are fixed, so different delivery times can only come from the bus's latencies.
    expect(c.log).not.toEqual(a.log);
    // Per subscriber, order is publish order whatever the latencies.
    for (const { log } of [a, c]) {
      for (const sub of ['sub-a#1', 'sub-b#1']) {
        const ns = log.filter((l) => l.startsWith(sub)).map((l) => Number(l.split(' ')[1]));
        expect(ns).toEqual([...ns].sort((x, y) => x - y));
      }
    }
  });

  it('delivers nothing to a crashed subscriber, even messages already in flight, and stops counting it', async () => {
    const sim = new Simulation({ seed: 3 });
    const failures = trackFailures(sim);
    const bus = new SimBus({ sim });
    const settle = <T>(p: Promise<T>): Promise<T> =>
      settleWithin(sim, failures, p, SETTLE_HORIZON_MS);
    const publisher = bus.busFor(idleIncarnation(sim, 'pub'));
    const received: BusMessage[] = [];
    const subProcess = sim.spawn('sub', () => new Promise<void>(() => {}));
    const subBus = bus.busFor(subProcess.start());
    await settle(subBus.subscribe('c', (m) => received.push(m)));
    const sent = publisher.publish('c', { type: 'in-flight' });
    // Let the server push the message: its delivery is now a scheduled event, not yet run.
    await quiesce();
    expect(sim.scheduler.queued).toBeGreaterThan(0);
    subProcess.crash();
    expect(await settle(sent)).toBe(1);
    expect(bus.openConnectionCount()).toBe(1);
    expect(await settle(publisher.publish('c', { type: 'after-crash' }))).toBe(0);
    await settle(
      new Promise<void>((resolve) => {
        sim.schedule({ delayMs: 200, label: 'test.wait', run: resolve });
      }),
    );
    expect(received).toEqual([]);
    bus.close();
  });

  it('holds deliveries to a paused subscriber and hands them over, in order, on resume', async () => {
    const sim = new Simulation({ seed: 4 });
    const failures = trackFailures(sim);
    const bus = new SimBus({ sim });
    const settle = <T>(p: Promise<T>): Promise<T> =>
      settleWithin(sim, failures, p, SETTLE_HORIZON_MS);
    const publisher = bus.busFor(idleIncarnation(sim, 'pub'));
    const received: { n: unknown; at: number }[] = [];
    const subProcess = sim.spawn('sub', () => new Promise<void>(() => {}));
    const subBus = bus.busFor(subProcess.start());
    await settle(subBus.subscribe('c', (m) => received.push({ n: m['n'], at: sim.scheduler.now })));
    const pausedAt = sim.scheduler.now;
    subProcess.pause({ resumeAfterMs: 500 });
    for (let n = 0; n < 5; n++) {
      // A paused process keeps its connection: the server still counts it.
      expect(await settle(publisher.publish('c', { type: 'm', n }))).toBe(1);
    }
    const all = new Promise<void>((resolve) => {
      const poll = (): void => {
        if (received.length === 5) resolve();
        else sim.schedule({ delayMs: 10, label: 'test.poll', run: poll });
      };
      poll();
    });
    await settle(all);
    expect(received.map((r) => r.n)).toEqual([0, 1, 2, 3, 4]);
    expect(received.every((r) => r.at >= pausedAt + 500)).toBe(true);
    bus.close();
  });

  it('lets a delivery filter drop, duplicate and reorder messages', async () => {
    const sim = new Simulation({ seed: 5 });
    const failures = trackFailures(sim);
    const bus = new SimBus({ sim });
    const settle = <T>(p: Promise<T>): Promise<T> =>
      settleWithin(sim, failures, p, SETTLE_HORIZON_MS);
    const publisher = bus.busFor(idleIncarnation(sim, 'pub'));
    const subscriber = bus.busFor(idleIncarnation(sim, 'sub'));
    const received: string[] = [];
    await settle(subscriber.subscribe('c', (m) => received.push(m.type)));
    bus.setDeliveryFilter((d) => {
      const type = (JSON.parse(d.payload) as BusMessage).type;
      if (type === 'drop') return [];
      if (type === 'dup') return [d.delayMs, d.delayMs + 50];
      if (type === 'late') return [d.delayMs + 100];
      return [d.delayMs];
    });
    for (const type of ['late', 'drop', 'dup', 'last']) {
      // The server counts the receiver whatever the network then does.
      expect(await settle(publisher.publish('c', { type }))).toBe(1);
    }
    await settle(
      new Promise<void>((resolve) => {
        sim.schedule({ delayMs: 200, label: 'test.wait', run: resolve });
      }),
    );
    expect(received).toEqual(['dup', 'last', 'dup', 'late']);
    expect(bus.stats()).toMatchObject({ published: 4, delivered: 4, dropped: 1, duplicated: 1 });
    // Healing restores the plain network.
    bus.setDeliveryFilter(null);
    await settle(publisher.publish('c', { type: 'drop' }));
    await settle(
      new Promise<void>((resolve) => {
        sim.schedule({ delayMs: 100, label: 'test.wait', run: resolve });
      }),
    );
    expect(received.at(-1)).toBe('drop');
    bus.close();
  });

  it('counts and logs malformed messages in the trace', async () => {
    const sim = new Simulation({ seed: 6, trace: { keepEntries: true } });
    const failures = trackFailures(sim);
    const bus = new SimBus({ sim });
    const settle = <T>(p: Promise<T>): Promise<T> =>
      settleWithin(sim, failures, p, SETTLE_HORIZON_MS);
    const subscriber = bus.busFor(idleIncarnation(sim, 'sub'), { prefix: 'p.' });
    const received: BusMessage[] = [];
    await settle(subscriber.subscribe('c', (m) => received.push(m)));
    await settle(bus.publishRaw('p.c', '{"type":'));
    await settle(bus.publishRaw('p.c', '{"type":"fine"}'));
    await settle(
      new Promise<void>((resolve) => {
        sim.schedule({ delayMs: 50, label: 'test.wait', run: resolve });
      }),
    );
    expect(received).toEqual([{ type: 'fine' }]);
    expect(subscriber.malformedMessages).toBe(1);
    const warnings = sim.trace
      .entries()
      .lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e['kind'] === 'log' && e['level'] === 'warn');
    expect(warnings).toMatchObject([
      { message: 'bus.malformed-message', channel: 'p.c', proc: 'sub#1', dropped: 1 },
    ]);
    bus.close();
  });

  it('gives every simulation its own server, even with equal seeds', async () => {
    const one = new Simulation({ seed: 1 });
    const two = new Simulation({ seed: 1 });
    const busOne = new SimBus({ sim: one });
    const busTwo = new SimBus({ sim: two });
    const sub = busOne.busFor(idleIncarnation(one, 'sub'));
    const pub = busTwo.busFor(idleIncarnation(two, 'pub'));
    await settleWithin(
      one,
      [],
      sub.subscribe('c', () => {}),
      SETTLE_HORIZON_MS,
    );
    expect(await settleWithin(two, [], pub.publish('c', { type: 'x' }), SETTLE_HORIZON_MS)).toBe(0);
    busOne.close();
    busTwo.close();
  });
});

describe('the in-memory Redis pub/sub server', () => {
  const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

  it('answers as Redis does: receiver counts, subscription counts, pushes in subscription order', async () => {
    const server = new PubSubServer();
    const [a, b, pub] = [server.connect(), server.connect(), server.connect()];
    const got: string[] = [];
    a.on('message', (channel, message) => got.push(`a ${channel} ${message}`));
    b.on('message', (channel, message) => got.push(`b ${channel} ${message}`));
    expect(await b.subscribe('c', 'd')).toBe(2);
    expect(await a.subscribe('c')).toBe(1);
    expect(await a.subscribe('c')).toBe(1); // once per channel
    expect(await pub.publish('c', 'one')).toBe(2);
    expect(await pub.publish('e', 'none')).toBe(0);
    expect(got).toEqual([]); // pushed on a later tick, as a socket read
    await tick();
    expect(got).toEqual(['b c one', 'a c one']);
    expect(await b.unsubscribe('c')).toBe(1);
    expect(await pub.publish('c', 'two')).toBe(1);
    expect(await b.unsubscribe()).toBe(0);
    expect(await pub.publish('d', 'three')).toBe(0);
  });

  it('refuses PUBLISH in subscriber mode and every command after QUIT; a drop ends subscriptions', async () => {
    const server = new PubSubServer();
    const [sub, pub] = [server.connect(), server.connect()];
    await sub.subscribe('c');
    await expect(sub.publish('c', 'x')).rejects.toThrow(SUBSCRIBER_MODE_ERROR);
    sub.disconnect();
    expect(await pub.publish('c', 'x')).toBe(0);
    expect(await pub.quit()).toBe('OK');
    await expect(pub.publish('c', 'x')).rejects.toThrow(CONNECTION_CLOSED_ERROR);
  });

  it('delivers nothing to a connection dropped before the push is read', async () => {
    const server = new PubSubServer();
    const [sub, pub] = [server.connect(), server.connect()];
    const got: string[] = [];
    sub.on('message', (_channel, message) => got.push(message));
    await sub.subscribe('c');
    expect(await pub.publish('c', 'x')).toBe(1);
    sub.disconnect();
    await tick();
    expect(got).toEqual([]);
  });
});

describe('Redis bus adapter over plain ioredis-mock', () => {
  let hosts = 0;
  const client = (host: string): RedisPubSubClient =>
    new RedisMock({ host, port: 6379, lazyConnect: false });
  /** Lets ioredis-mock's nextTick deliveries run. */
  const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('fits ioredis 5 and ioredis-mock 8 clients structurally', () => {
    expectTypeOf<Redis>().toExtend<RedisPubSubClient>();
    expectTypeOf<InstanceType<typeof RedisMock>>().toExtend<RedisPubSubClient>();
  });

  it('publishes and delivers without any simulator', async () => {
    const host = `adapter-${++hosts}`;
    const a = createRedisBus({ publisher: client(host), subscriber: client(host) });
    const b = createRedisBus({ publisher: client(host), subscriber: client(host) });
    const received: BusMessage[] = [];
    await b.subscribe('c', (m) => received.push(m));
    expect(await a.publish('c', { type: 'x', n: 1 })).toBe(1);
    await drain();
    expect(received).toEqual([{ type: 'x', n: 1 }]);
    await Promise.all([a.close(), b.close()]);
    // Closing unsubscribed at the server: ioredis-mock's own disconnect would leave it counted.
    const c = createRedisBus({ publisher: client(host), subscriber: client(host) });
    expect(await c.publish('c', { type: 'x' })).toBe(0);
    await c.close();
  });

  it('wraps driver failures as retryable UnavailableError with the cause', async () => {
    const cause = new Error('ECONNRESET');
    const failing: RedisPubSubClient = {
      publish: () => Promise.reject(cause),
      subscribe: () => Promise.reject(cause),
      unsubscribe: () => Promise.reject(cause),
      on: () => undefined,
      quit: () => Promise.reject(cause),
      disconnect: () => undefined,
    };
    const bus = createRedisBus({ publisher: failing, subscriber: failing });
    const published = bus.publish('c', { type: 'x' });
    await expect(published).rejects.toBeInstanceOf(UnavailableError);
    await expect(published).rejects.toMatchObject({
      code: 'bus.unavailable',
      retryable: true,
      cause,
    });
    await expect(bus.subscribe('c', () => {})).rejects.toMatchObject({
      code: 'bus.unavailable',
      cause,
    });
    // Close never fails: QUIT falls back to disconnect.
    await expect(bus.close()).resolves.toBeUndefined();
  });

  it('rejects a message that cannot be encoded as a non-retryable PortError', async () => {
    const host = `adapter-${++hosts}`;
    const bus = createRedisBus({ publisher: client(host), subscriber: client(host) });
    const cyclic: Record<string, unknown> = { type: 'loop' };
    cyclic['self'] = cyclic;
    const published = bus.publish('c', cyclic as unknown as BusMessage);
    await expect(published).rejects.toBeInstanceOf(PortError);
    await expect(published).rejects.toMatchObject({
      code: 'bus.invalid-message',
      retryable: false,
    });
    await bus.close();
  });

  it('still delivers to the other handlers when one throws, then surfaces the error', async () => {
    const listeners: ((channel: string, message: string) => void)[] = [];
    const fake: RedisPubSubClient = {
      publish: () => Promise.resolve(0),
      subscribe: () => Promise.resolve(1),
      unsubscribe: () => Promise.resolve(0),
      on: (_event, listener) => listeners.push(listener),
      quit: () => Promise.resolve('OK'),
      disconnect: () => undefined,
    };
    const bus = createRedisBus({ publisher: fake, subscriber: fake, prefix: 'x.' });
    const seen: string[] = [];
    await bus.subscribe('c', () => {
      throw new Error('handler bug');
    });
    await bus.subscribe('c', (m, channel) => seen.push(`${channel}:${m.type}`));
    expect(() => listeners[0]!('x.c', '{"type":"t"}')).toThrow('handler bug');
    expect(seen).toEqual(['c:t']);
    await bus.close();
  });
});
