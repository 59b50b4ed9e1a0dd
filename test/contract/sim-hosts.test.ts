// Goal: the simulated compute host and storage node keep the Hypervisor and Storage port contracts
// (the same suites later run against libvirt and zfs-fuse). Method: each test gets a fresh
// simulation whose host or node already holds foreign domains or datasets (so the suites prove they
// do not assume an empty host), and a caller process whose port handle the suite drives; `settle`
// steps the simulation until the awaited operation settles, and fails if the simulation reported a
// crash or runs dry first.
import { quiesce } from '../../src/sim/quiesce.ts';
import { Simulation } from '../../src/sim/simulation.ts';
import { SimComputeHost } from '../../src/sim/hosts/compute-host.ts';
import { SimStorageNode } from '../../src/sim/hosts/storage-node.ts';
import { hypervisorContract } from './hypervisor.contract.ts';
import { storageContract } from './storage.contract.ts';

/** Steps cap for one settle: far above any single operation of these suites. */
const SETTLE_STEPS_MAX = 100_000;

/** A simulation with one caller process and a `settle` that drives the world. */
function createWorld(seed: number) {
  const sim = new Simulation({ seed, trace: { keepEntries: true }, traceEvents: false });
  const caller = sim.spawn('contract', () => new Promise<void>(() => {})).start();
  const settle = async <T>(promise: Promise<T>): Promise<T> => {
    let settled = false;
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    await quiesce();
    for (let steps = 0; !settled; steps++) {
      if (steps >= SETTLE_STEPS_MAX) throw new Error(`not settled after ${steps} steps`);
      if (!(await sim.scheduler.step())) throw new Error('the simulation ran dry before settling');
    }
    const crash = sim.trace.entries().lines.find((line) => line.includes('"sim.crash"'));
    if (crash !== undefined) throw new Error(`the simulation failed: ${crash}`);
    return promise;
  };
  const sleep = (delayMs: number): Promise<void> =>
    settle(
      new Promise<void>((resolve) => sim.schedule({ delayMs, label: 'test.sleep', run: resolve })),
    );
  return { sim, caller, settle, sleep };
}

let seed = 0;

hypervisorContract(
  'simulated compute host',
  async () => {
    const { sim, caller, settle, sleep } = createWorld(++seed);
    const images = { present: '/cloudbed/present/disk.raw', missing: '/cloudbed/missing/disk.raw' };
    const host = new SimComputeHost({
      sim,
      id: 'c1',
      capacity: { vcpus: 8, memoryMb: 2048 },
      diskPresent: (source) => source === images.present,
    });
    const hypervisor = host.hypervisorFor(caller);
    // Foreign domains sorting before and after the suite's prefix, one of them using memory.
    for (const name of ['aa-foreign', 'zz-foreign']) {
      await settle(hypervisor.define({ name, vcpus: 1, memoryMb: 256, disks: [] }));
    }
    await settle(hypervisor.start('zz-foreign'));
    return {
      hypervisor,
      settle,
      sleep,
      diskImages: images,
      cleanup: () => settle(hypervisor.close()),
    };
  },
  // The simulated guest's power-off is capped at 60 s (HYPERVISOR_LATENCY['guest-shutdown']).
  { acpiShutdownWithinMs: 61_000 },
);

storageContract('simulated storage node', async () => {
  const { sim, caller, settle } = createWorld(++seed);
  const node = new SimStorageNode({ sim, id: 's1', pool: 'cloudbed', sizeBytes: 2 ** 31 });
  const storage = node.storageFor(caller);
  for (const name of ['aa-foreign', 'zz-foreign']) {
    await settle(storage.createVolume(name, 64 * 1024 * 1024));
    await settle(storage.snapshot(name, 'base'));
  }
  await settle(storage.clone('aa-foreign@base', 'aa-foreign-clone'));
  return {
    storage,
    settle,
    holdImage: (volume: string) => {
      const release = node.holdImage(volume);
      return Promise.resolve(() => {
        release();
        return Promise.resolve();
      });
    },
    cleanup: () => settle(storage.close()),
  };
});
