// Goal: the Redis bus adapter (src/adapters/redis-bus.ts) honours the Bus contract on a real Redis
// through ioredis 5 — real PUBLISH receiver counts, real SUBSCRIBE/UNSUBSCRIBE acknowledgements,
// real per-connection ordering — which is what the simulated bus (the in-memory pub/sub server through
// the scheduler) claims to reproduce; plus what only a real server shows: a failing connection is a
// retryable UnavailableError.
// Method: the shared contract suite from test/contract/bus.contract.ts; every harness uses a channel
// prefix unique to this run and test (`cloudbed_test_<run>_<n>.<namespace>.`), so runs sharing the
// server never see each other; `settle` just awaits.
import { describe, expect, it } from 'vitest';
import { Redis, type RedisOptions } from 'ioredis';
import { createRedisBus } from '../../src/adapters/redis-bus.ts';
import type { Bus } from '../../src/ports/bus.ts';
import { busContract, type BusConnectOptions, type BusHarness } from '../contract/bus.contract.ts';
import { REDIS, RUN_ID, requireService, sleep } from './real-services.ts';

const gate = await requireService(REDIS);

const redisOptions: RedisOptions = {
  host: REDIS.host,
  port: REDIS.port,
  connectTimeout: 5_000,
  // A command fails instead of waiting forever while the connection is down.
  maxRetriesPerRequest: 1,
};

let harnesses = 0;

/** A harness: its own channel prefix on the shared server; tracks every client to close them. */
function realHarness(): BusHarness {
  const prefix = `cloudbed_test_${RUN_ID}_${++harnesses}.`;
  const wire = (options?: BusConnectOptions): string =>
    `${prefix}${options?.namespace ?? 'default'}.`;
  const buses: Bus[] = [];
  let raw: Redis | null = null;
  return {
    impl: {
      connect: (options) => {
        const bus = createRedisBus({
          publisher: new Redis(redisOptions),
          subscriber: new Redis(redisOptions),
          prefix: wire(options),
        });
        buses.push(bus);
        return Promise.resolve(bus);
      },
      publishRaw: (channel, payload, options) => {
        raw ??= new Redis(redisOptions);
        return raw.publish(wire(options) + channel, payload);
      },
    },
    settle: (promise) => promise,
    advance: (ms) => sleep(ms),
    cleanup: async () => {
      await Promise.all(buses.map((bus) => bus.close()));
      await raw?.quit();
    },
  };
}

describe.skipIf(!gate.available)(`Redis ${REDIS.host}:${REDIS.port}${gate.skipReason}`, () => {
  busContract('Redis adapter on a real Redis (ioredis 5)', () => Promise.resolve(realHarness()));

  describe('Redis adapter boundary', () => {
    it('reports an unreachable server as a retryable UnavailableError with the cause', async () => {
      // A loopback port nobody listens on: connecting is refused at once.
      const dead: RedisOptions = {
        host: '127.0.0.1',
        port: 1,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
      };
      // ioredis reports connection failures as 'error' events too; whoever builds the clients
      // listens to them (here: to keep the output clean), the adapter sees the rejected commands.
      const client = (): Redis => new Redis(dead).on('error', () => undefined);
      const bus = createRedisBus({ publisher: client(), subscriber: client() });
      const published = bus.publish('c', { type: 'x' });
      await expect(published).rejects.toMatchObject({
        name: 'UnavailableError',
        code: 'bus.unavailable',
        retryable: true,
      });
      expect(((await published.catch((e: unknown) => e)) as Error).cause).toBeInstanceOf(Error);
      await bus.close();
    });
  });
});
