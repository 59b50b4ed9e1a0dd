/**
 * Goal: a request to the simulated API is let go once it is answered — a rejected 1 MiB body must
 * not stay in memory until the client's 30 s timeout (400 such requests once held 419 MB).
 * Method: send bodies the API rejects, keep only weak references to them, run the simulation until
 * the answers are in, force a full garbage collection and require every body collected; and no
 * client timeout left to run.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createCloud, SIM_API_ORIGIN, type Cloud } from '../../../src/sim/cloud.ts';
import { Simulation } from '../../../src/sim/simulation.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function cloud(): Promise<Cloud> {
  const sim = new Simulation({ seed: 3 });
  const c = await createCloud(sim, {
    topology: {
      compute: { count: 1, vcpus: 4, memoryMb: 4096 },
      storage: { count: 1, poolSizeGb: 100 },
      mainLoops: 1,
      accounts: [],
    },
    store: 'memory',
  });
  c.start();
  return c;
}

/** Sends a rejected request with a 1 MiB body; returns a weak reference to the body and the reply. */
function rejected(c: Cloud): { body: WeakRef<Uint8Array>; reply: Promise<number | undefined> } {
  const body = new Uint8Array(1024 * 1024).fill(0x7b);
  const reply = c
    .request({
      method: 'POST',
      url: `${SIM_API_ORIGIN}/v1/virtualmachines`,
      headers: { 'content-type': 'application/json' },
      body,
    })
    .then((response) => response?.status);
  return { body: new WeakRef(body), reply };
}

describe('a simulated client request', () => {
  it('is let go once answered, not at its timeout', async () => {
    const c = await cloud();
    const sent = Array.from({ length: 8 }, () => rejected(c));
    // Well short of the 30 s client timeout.
    await c.sim.run({ budget: { maxSteps: 100_000, maxSimTimeMs: 1_000 } });
    for (const { reply } of sent) expect(await reply).toBe(401);
    gc();
    expect(sent.filter(({ body }) => body.deref() !== undefined)).toHaveLength(0);
  });
});
