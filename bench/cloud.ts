/**
 * A cloud of a given size for the benchmarks: `hosts` compute hosts (one storage node per ten),
 * ten VMs per host created evenly over the first 30 simulated minutes, every tenth of them stopped
 * two minutes after its creation and every twentieth deleted three minutes after, no faults, the
 * memory store. The same shape at every size, so steps per second and simulated time per wall
 * second can be compared across sizes: the cost of a step must not grow with the cloud.
 */
import { toScenario, type Scenario } from '../src/sim/scenario.ts';

/** Simulated span over which the VMs are created. */
const CREATE_OVER_MS = 30 * 60_000;

/** The benchmark scenario for a cloud of `hosts` compute hosts. */
export function cloudScenario(hosts: number): Scenario {
  const vms = hosts * 10;
  const steps: { at: number; order: number; step: Record<string, unknown> }[] = [];
  for (let i = 0; i < vms; i++) {
    const at = Math.floor((i * CREATE_OVER_MS) / vms) + 1_000;
    steps.push({
      at,
      order: 0,
      step: {
        request: 'POST /v1/virtualmachines',
        body: { name: `vm-${i}`, imageId: 'img-00000001', vcpus: 1, memoryMb: 1024 },
        save: `v${i}`,
      },
    });
    if (i % 10 === 0)
      steps.push({
        at: at + 120_000,
        order: 1,
        step: { request: `POST /v1/virtualmachines/{v${i}}?action=stop` },
      });
    if (i % 20 === 5)
      steps.push({
        at: at + 180_000,
        order: 2,
        step: { request: `DELETE /v1/virtualmachines/{v${i}}` },
      });
  }
  steps.sort((a, b) => a.at - b.at || a.order - b.order);
  return toScenario({
    name: `bench-${hosts}`,
    topology: {
      compute: { count: hosts, vcpus: 64, memoryMb: 262_144 },
      storage: { count: Math.max(1, Math.floor(hosts / 10)), poolSizeGb: 1_048_576 },
      mainLoops: 2,
      accounts: ['alice'],
    },
    workload: steps.map(({ at, step }) => ({ at, ...step })),
    budgets: { settleWithin: '20m', maxSteps: 1_000_000_000 },
  });
}
