// Goal: find races between concurrent work inside one process that the step-level simulator
// reaches rarely or never, and prove the rules hold whatever the order: (1) two or three API
// requests on related resources, (2) two main loops reconciling the same resources, (3) a compute
// agent handling several commands (and duplicates) for one VM.
// Method: fc.scheduler decides when every port call of the code under test takes effect and when
// its answer arrives (src/fuzz/races.ts), and shrinks the order of a failing case.
// (1) A small cloud is brought to rest once in the simulator (vm1 stopped with extra volumes x 600
// GB and y 500 GB, vm2 stopped, free volumes v3 100 GB with snapshot s1, and v4 200 GB); each case
// copies its log into a fresh store and sends 2–3 requests at once to the real API over it. The
// recorded desired state must obey the API's rules (extra storage per VM within 1229 GB, both
// sides of an attachment agree, no live clone of a snapshot being deleted), and no answer is 5xx.
// (2) Two real MainLoops run one or two wakes each over that world with work pending, on a lock
// service whose sessions the schedule may expire: every fenced write lands while its writer holds
// the lock (or after its session expired, when fencing decides), and no stale token is applied.
// (3) The real compute agent over a scheduled hypervisor ends as the newest command asks, answers
// it, and never reports it failed.
// Two races the API once lost (two grows of one VM's volumes; a snapshot deleted while cloned)
// are also checked on their own, in every order.
// Budget: about 5 s in all (numRuns below).
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  apiOver,
  checkRaces,
  desiredStateViolation,
  RACE_WORLD_SETUP,
  scheduledStore,
  settledWorld,
  storeWith,
  type SettledWorld,
} from '../../src/fuzz/races.ts';

interface Request {
  readonly label: string;
  readonly method: 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
}

const REQUESTS: readonly Request[] = [
  {
    label: 'grow x to 700',
    method: 'POST',
    path: '/v1/volumes/{x}?action=grow',
    body: { sizeGb: 700 },
  },
  {
    label: 'grow y to 600',
    method: 'POST',
    path: '/v1/volumes/{y}?action=grow',
    body: { sizeGb: 600 },
  },
  {
    label: 'attach v3 to vm1',
    method: 'POST',
    path: '/v1/volumes/{v3}?action=attach',
    body: { virtualMachineId: '{vm1}' },
  },
  {
    label: 'attach v4 to vm1',
    method: 'POST',
    path: '/v1/volumes/{v4}?action=attach',
    body: { virtualMachineId: '{vm1}' },
  },
  {
    label: 'attach v3 to vm2',
    method: 'POST',
    path: '/v1/volumes/{v3}?action=attach',
    body: { virtualMachineId: '{vm2}' },
  },
  { label: 'detach x', method: 'POST', path: '/v1/volumes/{x}?action=detach' },
  {
    label: 'snapshot v3',
    method: 'POST',
    path: '/v1/volumes/{v3}?action=snapshot',
    body: { name: 's2' },
  },
  { label: 'delete v3', method: 'DELETE', path: '/v1/volumes/{v3}' },
  { label: 'delete s1', method: 'DELETE', path: '/v1/snapshots/{s1}' },
  {
    label: 'clone s1',
    method: 'POST',
    path: '/v1/volumes',
    body: { name: 'c1', sourceSnapshotId: '{s1}' },
  },
  { label: 'start vm1', method: 'POST', path: '/v1/virtualmachines/{vm1}?action=start' },
  { label: 'delete vm1', method: 'DELETE', path: '/v1/virtualmachines/{vm1}' },
];

const byLabel = (label: string): Request => {
  const request = REQUESTS.find((r) => r.label === label);
  if (request === undefined) throw new Error(`no request ${label}`);
  return request;
};

let world: SettledWorld;

beforeAll(async () => {
  world = await settledWorld(1, RACE_WORLD_SETUP);
}, 60_000);

function fill(text: string): string {
  return text.replace(
    /\{([A-Za-z0-9_-]+)\}/g,
    (_, name: string) => world.ids.get(name) ?? `{${name}}`,
  );
}

/** Sends `requests` at once under scheduler `s`; resolves with the statuses and the violation. */
async function race(s: fc.Scheduler, requests: readonly Request[]) {
  const store = await storeWith(world.events);
  expect(await desiredStateViolation(store), 'the settled world breaks a rule').toBeUndefined();
  const statuses: number[] = [];
  const answers = requests.map((request, i) =>
    apiOver(scheduledStore(store, s, `request ${i + 1}`), world, i + 1)(
      request.method,
      fill(request.path),
      request.body === undefined ? undefined : JSON.parse(fill(JSON.stringify(request.body))),
    ).then((response) => {
      statuses[i] = response.status;
    }),
  );
  await s.waitFor(Promise.all(answers));
  return { statuses, violation: await desiredStateViolation(store) };
}

/** The property over `requestsArb`: no 5xx, no broken rule. */
function apiProperty(requestsArb: fc.Arbitrary<readonly Request[]>) {
  return fc.asyncProperty(fc.scheduler(), requestsArb, async (s, requests) => {
    const { statuses, violation } = await race(s, requests);
    const labels = requests.map((r) => r.label).join(' ∥ ');
    expect(
      statuses.every((status) => status < 500),
      `${labels}: ${statuses.join(', ')}`,
    ).toBe(true);
    if (violation !== undefined) throw new Error(`${labels}: ${violation}`);
  });
}

describe('concurrent API requests, interleaved by fc.scheduler', () => {
  it('every request alone keeps the rules, and most are accepted (the harness is sound)', async () => {
    let accepted = 0;
    for (const request of REQUESTS) {
      const [s] = fc.sample(fc.scheduler(), { numRuns: 1, seed: 1 });
      const { statuses, violation } = await race(s!, [request]);
      expect(statuses[0], request.label).toBeLessThan(500);
      expect(violation, request.label).toBeUndefined();
      if (statuses[0]! < 300) accepted++;
    }
    // Placeholders resolve and the world is as described: nearly every request is valid alone.
    expect(accepted).toBeGreaterThanOrEqual(REQUESTS.length - 1);
  });

  // 200 cases of 2–3 requests on a fresh store each: about 2 s.
  it('answers no 5xx and records nothing that breaks the API rules, in any order', async () => {
    const requestsArb = fc.array(fc.constantFrom(...REQUESTS), { minLength: 2, maxLength: 3 });
    await fc.assert(apiProperty(requestsArb), { numRuns: 200, seed: 1 });
  });

  it('two grows of one VM’s volumes never exceed its 1229 GB of extra storage', async () => {
    await fc.assert(
      apiProperty(fc.constant([byLabel('grow x to 700'), byLabel('grow y to 600')])),
      { numRuns: 50, seed: 1 },
    );
  });

  it('a snapshot is never deleted while a clone of it is created', async () => {
    await fc.assert(apiProperty(fc.constant([byLabel('delete s1'), byLabel('clone s1')])), {
      numRuns: 50,
      seed: 1,
    });
  });
});

describe('two main loops on the same resources, interleaved by fc.scheduler', () => {
  // 200 cases of one or two wakes of two loops: about 2 s.
  it('write only while holding the lock, and never apply a stale token', async () => {
    const report = await checkRaces('mainloop', { runs: 200, seed: 1, world });
    expect(report.failure, JSON.stringify(report.failure)).toBeUndefined();
    expect(report.runs).toBe(200);
  });
});

describe('a compute agent with several commands for one VM, interleaved by fc.scheduler', () => {
  // 500 cases: well under a second.
  it('ends as the newest command asks and reports it done', async () => {
    const report = await checkRaces('agent', { runs: 500, seed: 1 });
    expect(report.failure, JSON.stringify(report.failure)).toBeUndefined();
    expect(report.runs).toBe(500);
  });
});
