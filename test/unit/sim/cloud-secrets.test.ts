/**
 * Goal: a simulated cloud's secrets replay with its seed, unless the cloud is told to draw them
 * from the system's CSPRNG (what `cloudbed serve` does): then knowing the seed gives nothing away.
 * Method: build two clouds from one seed, with and without `secrets: cryptoRandom()`, and compare
 * the key pairs the setup gave the topology's accounts; then, on the CSPRNG clouds, an api key a
 * tenant creates through the running API process.
 */
import { describe, expect, it } from 'vitest';
import { cryptoRandom } from '../../../src/adapters/system-runtime.ts';
import { createCloud, SIM_API_ORIGIN, type Cloud } from '../../../src/sim/cloud.ts';
import { Simulation } from '../../../src/sim/simulation.ts';

const topology = {
  compute: { count: 1, vcpus: 4, memoryMb: 4096 },
  storage: { count: 1, poolSizeGb: 100 },
  mainLoops: 1,
  accounts: ['alice', 'bob'],
};

async function cloud(secrets: boolean): Promise<Cloud> {
  const sim = new Simulation({ seed: 7 });
  return createCloud(sim, {
    topology,
    store: 'memory',
    ...(secrets ? { secrets: cryptoRandom() } : {}),
  });
}

/** Creates an api key as alice through the API process; returns its secret. */
async function newKey(c: Cloud): Promise<string> {
  const alice = c.accounts.get('alice')!;
  c.start();
  const reply = c.request({
    method: 'POST',
    url: `${SIM_API_ORIGIN}/v1/apikeys`,
    headers: {
      authorization: `Basic ${Buffer.from(`${alice.accessKey}:${alice.secretKey}`).toString('base64')}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: JSON.stringify({ name: 'ci' }),
  });
  await c.sim.run({ budget: { maxSteps: 10_000, maxSimTimeMs: 1_000 } });
  const response = await reply;
  expect(response?.status).toBe(201);
  return (JSON.parse(response!.body) as { secretValue: string }).secretValue;
}

describe('a simulated cloud’s secrets', () => {
  it('replay with the seed by default', async () => {
    const [a, b] = [await cloud(false), await cloud(false)];
    expect(a.accounts.get('alice')).toEqual(b.accounts.get('alice'));
    expect(await newKey(a)).toBe(await newKey(b));
  });

  it('come from the CSPRNG when asked, so the seed does not give them away', async () => {
    const [a, b] = [await cloud(true), await cloud(true)];
    for (const name of ['alice', 'bob']) {
      expect(a.accounts.get(name)!.accessKey).not.toBe(b.accounts.get(name)!.accessKey);
      expect(a.accounts.get(name)!.secretKey).not.toBe(b.accounts.get(name)!.secretKey);
    }
    expect(await newKey(a)).not.toBe(await newKey(b));
  });
});
