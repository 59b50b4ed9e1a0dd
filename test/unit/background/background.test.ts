// Goal: the background service turns agent reports into events exactly when something changed:
// host.up on the first inventory and when reports resume, host.down after hostDownAfterMs of
// silence, vm/volume/snapshot observations only on change (also with duplicated deliveries and
// with two background instances racing), results only for the command a resource waits on, stale
// (reordered) inventories dropped, and usage records that add up to the observed running time.
// Method: a simulated world (../agents/agent-world.ts) with real agents over simulated hosts, the
// in-memory store with the model's projector, and a driver playing the main loop; assertions read
// the event streams and projections.
import { describe, expect, it } from 'vitest';
import { BYTES_PER_GB, usageStreamId, type UsageRow } from '../../../src/model/resources.ts';
import { CHANNELS } from '../../../src/ports/bus.ts';
import type { StoredEvent } from '../../../src/ports/event-store.ts';
import { SIM_EPOCH_MS } from '../../../src/sim/simulation.ts';
import {
  ACCOUNT,
  createAgentWorld,
  ev,
  hostCreated,
  sendCommand,
  snapshotCreated,
  vmCreated,
  vmEnsure,
  volumeCreated,
  type AgentWorld,
} from '../agents/agent-world.ts';

const HOST = 'host-c1';
const NODE = 'stor-1';
const VM = 'vm-0000000a';

async function computeWorld(
  seed: number,
  options: { backgrounds?: number; duplicate?: boolean; inventoryIntervalMs?: number } = {},
) {
  const w = createAgentWorld({
    seed,
    compute: [HOST],
    ...(options.duplicate === true
      ? { deliveryFilter: (d: { delayMs: number }) => [d.delayMs, d.delayMs + 0.5] }
      : {}),
  });
  await w.append(HOST, [hostCreated('compute')]);
  await w.append(VM, [vmCreated('vol-00000001'), ev('vm.placed', { hostId: HOST })]);
  const agent = w.spawnCompute(HOST, {
    inventoryIntervalMs: options.inventoryIntervalMs ?? 10_000,
    shutdownTimeoutMs: 5_000,
  });
  const backgrounds = Array.from({ length: options.backgrounds ?? 1 }, (_, i) =>
    w.spawnBackground(`background-${i + 1}`, { hostDownAfterMs: 30_000, checkIntervalMs: 5_000 }),
  );
  for (const b of backgrounds) b.start();
  await w.runFor(20);
  agent.start();
  return { w, agent, backgrounds };
}

async function stream(w: AgentWorld, id: string): Promise<readonly StoredEvent[]> {
  return w.store.readStream(id);
}

async function count(w: AgentWorld, id: string, type: string): Promise<number> {
  return (await stream(w, id)).filter((e) => e.type === type).length;
}

/** No two consecutive observations of a stream carry the same data. */
async function expectOnlyChanges(w: AgentWorld, id: string, type: string): Promise<void> {
  const observed = (await stream(w, id))
    .filter((e) => e.type === type)
    .map((e) => JSON.stringify(e.data));
  for (let i = 1; i < observed.length; i++) expect(observed[i]).not.toBe(observed[i - 1]);
}

async function state(w: AgentWorld, id: string): Promise<string> {
  return (await w.row(id)).data['state'] as string;
}

describe('background: hosts', () => {
  it('activates a host on its first inventory, marks it down when reports stop and up when they resume', async () => {
    const { w, agent } = await computeWorld(1);
    await w.runFor(1_000);
    expect(await state(w, HOST)).toBe('active');
    expect((await w.row(HOST)).data['observed']).toMatchObject({ vcpus: 16, memoryMb: 16_384 });
    expect(
      w.changes.some((c) => c.message['stream'] === HOST && c.message['resourceType'] === 'host'),
    ).toBe(true);
    // Many inventories later, still one host.up.
    await w.runFor(60_000);
    expect(await w.eventTypes(HOST)).toEqual(['host.created', 'host.up']);

    agent.crash();
    const silentFrom = w.now();
    await w.runFor(29_000);
    expect(await state(w, HOST)).toBe('active');
    await w.runFor(7_000);
    expect(await state(w, HOST)).toBe('down');
    const down = (await stream(w, HOST)).at(-1)!;
    expect(down.type).toBe('host.down');
    expect(down.data['lastSeenMs']).toBeLessThanOrEqual(SIM_EPOCH_MS + silentFrom);
    await w.runFor(60_000);
    expect(await count(w, HOST, 'host.down')).toBe(1);

    agent.restartAfter(0);
    await w.runFor(1_000);
    expect(await state(w, HOST)).toBe('active');
    expect(await w.eventTypes(HOST)).toEqual(['host.created', 'host.up', 'host.down', 'host.up']);
  });

  it('declares a host down that never reports after a restart of the background, only after a fresh grace period', async () => {
    const { w, agent, backgrounds } = await computeWorld(2);
    await w.runFor(1_000);
    agent.crash();
    await w.runFor(20_000);
    backgrounds[0]!.crash({ restartAfterMs: 1_000 });
    await w.runFor(25_000);
    expect(await state(w, HOST)).toBe('active');
    await w.runFor(10_000);
    expect(await state(w, HOST)).toBe('down');
  });
});

describe('background: observations and results', () => {
  it('records vm observations only on change and the result of the awaited command once', async () => {
    const { w } = await computeWorld(3);
    await w.runFor(1_000);
    const start = vmEnsure(VM, 'running', 1);
    await sendCommand(w, HOST, start);
    await w.runFor(2_000);
    expect(await state(w, VM)).toBe('running');
    await w.runFor(60_000);
    const vm = (await w.row(VM)).data;
    expect(vm['observed']).toMatchObject({
      hostId: HOST,
      domain: 'running',
      disks: ['vol-00000001'],
    });
    expect(vm['lastResult']).toMatchObject({ commandId: start.commandId, ok: true, error: null });
    expect(await count(w, VM, 'vm.observed')).toBe(2);
    expect(await count(w, VM, 'vm.command-reported')).toBe(1);

    const stop = vmEnsure(VM, 'stopped', 1);
    await w.append(VM, [ev('vm.stop-requested', {})]);
    await sendCommand(w, HOST, stop, 2);
    await w.runFor(20_000);
    expect(await state(w, VM)).toBe('stopped');
    expect(await count(w, VM, 'vm.observed')).toBe(3);
    await expectOnlyChanges(w, VM, 'vm.observed');
    // Every write was announced.
    expect(w.changes.filter((c) => c.message['stream'] === VM).length).toBeGreaterThanOrEqual(5);
  });

  it('ignores results of commands the resource no longer waits on, duplicates and unknown resources', async () => {
    const { w } = await computeWorld(4);
    await w.runFor(1_000);
    const first = vmEnsure(VM, 'running', 1);
    await sendCommand(w, HOST, first);
    await w.runFor(2_000);
    const before = (await stream(w, VM)).length;
    w.publish(CHANNELS.reports, {
      type: 'result',
      commandId: first.commandId,
      resource: VM,
      ok: true,
      hostId: HOST,
    });
    w.publish(CHANNELS.reports, {
      type: 'result',
      commandId: 'cmd-old',
      resource: VM,
      ok: false,
      error: 'x',
      hostId: HOST,
    });
    w.publish(CHANNELS.reports, {
      type: 'result',
      commandId: 'cmd-x',
      resource: 'vm-unknown',
      ok: true,
    });
    w.publish(CHANNELS.reports, { type: 'result', commandId: 7 });
    w.publish(CHANNELS.reports, {
      type: 'inventory',
      hostId: HOST,
      kind: 'compute',
      domains: 'nope',
      capacity: {},
    });
    await w.runFor(1_000);
    expect((await stream(w, VM)).length).toBe(before);
  });

  it('reports a failed command as the transitioning message', async () => {
    const { w } = await computeWorld(5);
    await w.runFor(1_000);
    const huge = vmEnsure(VM, 'running', 1, { memoryMb: 1_000_000 });
    await sendCommand(w, HOST, huge);
    await w.runFor(2_000);
    const vm = (await w.row(VM)).data;
    expect(vm['lastResult']).toMatchObject({
      commandId: huge.commandId,
      ok: false,
      error: 'out-of-memory',
    });
    // The message may since have been cleared by a state change (the domain got defined, shut off).
    const progress = (await stream(w, VM)).filter((e) => e.type === 'vm.progress-reported');
    expect(progress.map((e) => e.data)).toEqual([
      { message: `vm.ensure failed on ${HOST}: out-of-memory`, progress: null },
    ]);
  });

  it('records each change once with duplicated deliveries and two background instances racing', async () => {
    const { w } = await computeWorld(6, {
      backgrounds: 2,
      duplicate: true,
      inventoryIntervalMs: 2_000,
    });
    await w.runFor(1_000);
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runFor(10_000);
    await w.append(VM, [ev('vm.stop-requested', {})]);
    await sendCommand(w, HOST, vmEnsure(VM, 'stopped', 1), 2);
    await w.runFor(20_000);
    expect(await state(w, VM)).toBe('stopped');
    expect(await count(w, VM, 'vm.observed')).toBe(3);
    expect(await count(w, VM, 'vm.command-reported')).toBe(2);
    expect(await count(w, HOST, 'host.up')).toBe(1);
    await expectOnlyChanges(w, VM, 'vm.observed');
  });

  it('drops an inventory that is older than one already processed', async () => {
    const { w } = await computeWorld(7);
    await w.runFor(1_000);
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runFor(12_000);
    expect((await w.row(VM)).data['observed']).toMatchObject({ domain: 'running' });
    const stale = {
      type: 'inventory',
      hostId: HOST,
      kind: 'compute',
      domains: [],
      capacity: { vcpus: 16, memoryMb: 16_384 },
      atMs: SIM_EPOCH_MS + w.now() - 5_000,
    };
    w.publish(CHANNELS.reports, stale);
    await w.runFor(500);
    expect((await w.row(VM)).data['observed']).toMatchObject({ domain: 'running' });
    // The same inventory, fresh, is believed: the domain vanished.
    w.publish(CHANNELS.reports, { ...stale, atMs: SIM_EPOCH_MS + w.now() });
    await w.runFor(500);
    expect((await w.row(VM)).data['observed']).toMatchObject({ domain: 'absent' });
  });

  it('records volume and snapshot observations from storage inventories', async () => {
    const w = createAgentWorld({ seed: 8, storage: [NODE] });
    await w.append(NODE, [hostCreated('storage')]);
    await w.append('vol-00000001', [volumeCreated({ storageNodeId: NODE, sizeGb: 10 })]);
    await w.append('snap-00000001', [snapshotCreated('vol-00000001', NODE)]);
    w.spawnBackground('background').start();
    w.spawnStorage(NODE, { inventoryIntervalMs: 10_000 }).start();
    // The first inventory follows the image catalogue's creation.
    await w.runFor(5_000);
    expect(await state(w, NODE)).toBe('active');
    expect((await w.row(NODE)).data['observed']).toMatchObject({
      poolSizeBytes: 2048 * BYTES_PER_GB,
    });
    expect((await w.row('vol-00000001')).data['observed']).toMatchObject({ present: false });
    await sendCommand(w, NODE, {
      type: 'volume.ensure',
      commandId: 'v1',
      token: 1,
      volumeId: 'vol-00000001',
      present: true,
      sizeBytes: 10 * BYTES_PER_GB,
      origin: null,
    });
    await w.runFor(1_000);
    expect(await state(w, 'vol-00000001')).toBe('available');
    await sendCommand(w, NODE, {
      type: 'snapshot.ensure',
      commandId: 's1',
      token: 1,
      snapshotId: 'snap-00000001',
      volumeId: 'vol-00000001',
      present: true,
    });
    await w.runFor(30_000);
    expect((await w.row('snap-00000001')).data['observed']).toMatchObject({
      storageNodeId: NODE,
      present: true,
      sizeBytes: 10 * BYTES_PER_GB,
    });
    expect(await state(w, 'snap-00000001')).toBe('available');
    expect(await count(w, 'vol-00000001', 'volume.observed')).toBe(2);
    expect(await count(w, 'snap-00000001', 'snapshot.observed')).toBe(2);
  });
});

describe('background: usage', () => {
  it('records VM-hours and GB-hours that add up to the observed running and present time', async () => {
    const w = createAgentWorld({ seed: 9, compute: [HOST], storage: [NODE] });
    await w.append(HOST, [hostCreated('compute')]);
    await w.append(NODE, [hostCreated('storage')]);
    await w.append(VM, [vmCreated('vol-00000001'), ev('vm.placed', { hostId: HOST })]);
    await w.append('vol-00000001', [
      volumeCreated({ storageNodeId: NODE, sizeGb: 10, virtualMachineId: VM, root: true }),
    ]);
    const options = {
      hostDownAfterMs: 300_000,
      checkIntervalMs: 30_000,
      usageIntervalMs: 3_600_000,
      usageSweepIntervalMs: 300_000,
    };
    w.spawnBackground('background', options).start();
    w.spawnCompute(HOST, { inventoryIntervalMs: 60_000 }).start();
    w.spawnStorage(NODE, { inventoryIntervalMs: 60_000 }).start();
    await w.runFor(1_000);
    await sendCommand(w, NODE, {
      type: 'volume.ensure',
      commandId: 'v1',
      token: 1,
      volumeId: 'vol-00000001',
      present: true,
      sizeBytes: 10 * BYTES_PER_GB,
      origin: null,
    });
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runFor(2.5 * 3_600_000);
    await w.append(VM, [ev('vm.stop-requested', {})]);
    await sendCommand(w, HOST, vmEnsure(VM, 'stopped', 1), 2);
    await w.runFor(60_000);
    expect(await state(w, VM)).toBe('stopped');

    const observed = (await stream(w, VM)).filter((e) => e.type === 'vm.observed');
    const runningAt = observed.find((e) => e.data['domain'] === 'running')!.meta.atMs;
    const stoppedAt = observed.find((e) => e.data['domain'] === 'shutoff')!.meta.atMs;
    const usageEvents = await stream(w, usageStreamId(ACCOUNT));
    const vmRecords = usageEvents.filter((e) => e.data['resourceId'] === VM).map((e) => e.data);
    // Contiguous spans from the start of running to the stop, hourly while steady.
    expect(vmRecords.length).toBe(3);
    expect(vmRecords[0]!['fromMs']).toBe(runningAt);
    for (let i = 1; i < vmRecords.length; i++)
      expect(vmRecords[i]!['fromMs']).toBe(vmRecords[i - 1]!['toMs']);
    expect(vmRecords.at(-1)!['toMs']).toBe(stoppedAt);
    const usage = (await w.row(usageStreamId(ACCOUNT))).data as unknown as UsageRow;
    expect(usage.totals['vm-hours']).toBeCloseTo((stoppedAt - runningAt) / 3_600_000, 5);
    // The volume stays present: GB-hours accrue hourly at 10 GB.
    const volumeRecords = usageEvents.filter((e) => e.data['resourceId'] === 'vol-00000001');
    expect(volumeRecords.length).toBe(2);
    const volumeHours =
      volumeRecords.reduce(
        (s, e) => s + ((e.data['toMs'] as number) - (e.data['fromMs'] as number)),
        0,
      ) / 3_600_000;
    expect(usage.totals['gb-hours']).toBeCloseTo(10 * volumeHours, 5);
    expect(volumeHours).toBeGreaterThanOrEqual(2);
  });
});

describe('determinism', () => {
  async function scenario(seed: number): Promise<string> {
    const { w, agent } = await computeWorld(seed, { backgrounds: 2, inventoryIntervalMs: 3_000 });
    await w.runFor(1_000);
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    w.sim.schedule({
      delayMs: 150,
      label: 'test.crash',
      run: () => agent.crash({ restartAfterMs: 700 }),
    });
    await w.runFor(5_000);
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1), 2);
    await w.runFor(40_000);
    expect(await state(w, VM)).toBe('running');
    return w.sim.trace.digest();
  }

  it('gives the same trace for the same seed', async () => {
    const a = await scenario(11);
    const b = await scenario(11);
    const c = await scenario(12);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });
});
