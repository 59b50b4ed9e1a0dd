// Goal: the compute agent applies vm.ensure idempotently, enforces fencing tokens (in memory and
// through the store after a restart), never lets a port error escape, collects orphan domains and
// only those, survives a crash at any point of a command (the re-sent command ends in the same
// state), and inventories at start, after commands and after a restart. Method: a simulated world
// (agent-world.ts) with one compute host, the in-memory store with the model's projector and the
// simulated bus; a driver process plays the main loop. Hypervisor calls are counted through a
// proxy; outcomes are read from the host's synchronous inspection and from the reports.
import { describe, expect, it } from 'vitest';
import { CHANNELS, type BusMessage } from '../../../src/ports/bus.ts';
import { fixedLatency } from '../../../src/sim/hosts/latency.ts';
import { sameDefinition, orphanReason } from '../../../src/control/agents/compute-agent.ts';
import {
  createAgentWorld,
  ev,
  sendCommand,
  vmCreated,
  vmEnsure,
  type AgentWorld,
} from './agent-world.ts';

const HOST = 'host-c1';
const VM = 'vm-0000000a';

async function placedVm(w: AgentWorld, vmId: string, hostId: string): Promise<void> {
  await w.append(vmId, [vmCreated('vol-00000001'), ev('vm.placed', { hostId })]);
}

function stateOf(w: AgentWorld, name: string): string | undefined {
  return w.compute
    .get(HOST)
    ?.domains()
    .find((d) => d.name === name)?.state;
}

async function startedWorld(seed = 1, options: Parameters<typeof createAgentWorld>[0] = { seed }) {
  const w = createAgentWorld({ compute: [HOST], ...options, seed });
  await placedVm(w, VM, HOST);
  const agent = w.spawnCompute(HOST, { inventoryIntervalMs: 10_000, shutdownTimeoutMs: 5_000 });
  agent.start();
  await w.runFor(50);
  return { w, agent };
}

describe('compute agent', () => {
  it('publishes an inventory at start', async () => {
    const { w } = await startedWorld();
    const inventories = w.inventoriesOf(HOST);
    expect(inventories.length).toBe(1);
    expect(inventories[0]!.message).toMatchObject({
      type: 'inventory',
      kind: 'compute',
      hostId: HOST,
      domains: [],
      capacity: { vcpus: 16, memoryMb: 16_384 },
    });
    expect(typeof inventories[0]!.message['atMs']).toBe('number');
  });

  it('applies the same ensure twice (at once and later) with one define and one start', async () => {
    const { w } = await startedWorld();
    const first = vmEnsure(VM, 'running', 1);
    await sendCommand(w, HOST, first);
    // The duplicate arrives while the first is in flight, the third after it finished.
    w.publish(CHANNELS.agent(HOST), first as unknown as BusMessage, 5);
    await w.runUntil(() => w.resultsFor(first.commandId).length === 2, 5_000, 'two results');
    const again = vmEnsure(VM, 'running', 1);
    await sendCommand(w, HOST, again, 2);
    await w.runUntil(() => w.resultsFor(again.commandId).length === 1, 5_000, 'third result');
    expect(w.resultsFor(first.commandId).every((r) => r['ok'] === true)).toBe(true);
    expect(w.resultsFor(again.commandId)[0]).toMatchObject({
      ok: true,
      resource: VM,
      hostId: HOST,
    });
    expect(w.hypervisorCalls['define']).toBe(1);
    expect(w.hypervisorCalls['start']).toBe(1);
    expect(stateOf(w, VM)).toBe('running');
    // An inventory follows the command and shows the domain.
    const last = w.inventoriesOf(HOST).at(-1)!.message;
    expect(last['domains']).toMatchObject([
      { name: VM, state: 'running', vcpus: 1, memoryMb: 512 },
    ]);
  });

  it('rejects a token older than the newest it has seen, and after a restart through the store', async () => {
    const { w, agent } = await startedWorld();
    const newer = vmEnsure(VM, 'running', 5);
    await sendCommand(w, HOST, newer);
    await w.runUntil(() => w.resultsFor(newer.commandId).length === 1, 5_000);
    const older = vmEnsure(VM, 'absent', 3);
    w.publish(CHANNELS.agent(HOST), older as unknown as BusMessage);
    await w.runUntil(() => w.resultsFor(older.commandId).length === 1, 5_000);
    expect(w.resultsFor(older.commandId)[0]).toMatchObject({ ok: false, error: 'stale-token' });
    expect(stateOf(w, VM)).toBe('running');

    // A restart forgets the memory; the store's fence (5, from command-sent) still stops token 4.
    agent.crash({ restartAfterMs: 1_000 });
    await w.runFor(1_500);
    const late = vmEnsure(VM, 'absent', 4);
    w.publish(CHANNELS.agent(HOST), late as unknown as BusMessage);
    await w.runUntil(() => w.resultsFor(late.commandId).length === 1, 5_000);
    expect(w.resultsFor(late.commandId)[0]).toMatchObject({ ok: false, error: 'stale-token' });
    expect(stateOf(w, VM)).toBe('running');
    // The same token as the newest is not stale: a re-send by the same lock holder.
    const same = vmEnsure(VM, 'stopped', 5);
    w.publish(CHANNELS.agent(HOST), same as unknown as BusMessage);
    await w.runUntil(() => w.resultsFor(same.commandId).length === 1, 20_000);
    expect(w.resultsFor(same.commandId)[0]).toMatchObject({ ok: true });
    expect(stateOf(w, VM)).toBe('shutoff');
  });

  it('stops gracefully, and destroys a guest that ignores the power button after the timeout', async () => {
    const { w } = await startedWorld(3, {
      seed: 3,
      hypervisorLatency: { 'guest-shutdown': fixedLatency(2_000) },
    });
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runUntil(() => stateOf(w, VM) === 'running', 5_000);
    const stop = vmEnsure(VM, 'stopped', 1);
    await sendCommand(w, HOST, stop, 2);
    await w.runUntil(() => w.resultsFor(stop.commandId).length === 1, 10_000);
    expect(stateOf(w, VM)).toBe('shutoff');
    expect(w.hypervisorCalls['destroy'] ?? 0).toBe(0);

    const slow = createAgentWorld({
      seed: 4,
      compute: [HOST],
      hypervisorLatency: { 'guest-shutdown': fixedLatency(120_000) },
    });
    await placedVm(slow, VM, HOST);
    slow.spawnCompute(HOST, { shutdownTimeoutMs: 5_000 }).start();
    await slow.runFor(50);
    await sendCommand(slow, HOST, vmEnsure(VM, 'running', 1));
    await slow.runUntil(() => slow.compute.get(HOST)!.domains()[0]?.state === 'running', 5_000);
    const stubborn = vmEnsure(VM, 'stopped', 1);
    const sentAt = slow.now();
    await sendCommand(slow, HOST, stubborn, 2);
    await slow.runUntil(() => slow.resultsFor(stubborn.commandId).length === 1, 20_000);
    expect(slow.resultsFor(stubborn.commandId)[0]).toMatchObject({ ok: true });
    expect(slow.now() - sentAt).toBeGreaterThanOrEqual(5_000);
    expect(slow.compute.get(HOST)!.domains()[0]?.state).toBe('shutoff');
    expect(slow.hypervisorCalls['destroy']).toBe(1);
  });

  it('makes a domain absent: destroy, then undefine', async () => {
    const { w } = await startedWorld();
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runUntil(() => stateOf(w, VM) === 'running', 5_000);
    const gone = vmEnsure(VM, 'absent', 2);
    await sendCommand(w, HOST, gone, 2);
    await w.runUntil(() => w.resultsFor(gone.commandId).length === 1, 5_000);
    expect(w.resultsFor(gone.commandId)[0]).toMatchObject({ ok: true });
    expect(w.compute.get(HOST)!.domains()).toEqual([]);
    // Again: nothing left to do, still ok.
    const again = vmEnsure(VM, 'absent', 2);
    await sendCommand(w, HOST, again, 3);
    await w.runUntil(() => w.resultsFor(again.commandId).length === 1, 5_000);
    expect(w.resultsFor(again.commandId)[0]).toMatchObject({ ok: true });
  });

  it('reports hypervisor errors as results and keeps serving', async () => {
    const w = createAgentWorld({ seed: 5, compute: [HOST], computeMemoryMb: 256 });
    await placedVm(w, VM, HOST);
    w.spawnCompute(HOST).start();
    await w.runFor(50);
    const big = vmEnsure(VM, 'running', 1, { memoryMb: 512 });
    await sendCommand(w, HOST, big);
    await w.runUntil(() => w.resultsFor(big.commandId).length === 1, 5_000);
    expect(w.resultsFor(big.commandId)[0]).toMatchObject({ ok: false, error: 'out-of-memory' });
    // The failure is logged as a warning, with the command's id.
    const failed = w.sim.trace
      .entries()
      .lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e['message'] === 'agent.command-failed');
    expect(failed).toEqual([
      expect.objectContaining({ kind: 'log', level: 'warn', commandId: big.commandId }),
    ]);
    const small = vmEnsure(VM, 'running', 1, { memoryMb: 128 });
    await sendCommand(w, HOST, small, 2);
    await w.runUntil(() => w.resultsFor(small.commandId).length === 1, 5_000);
    expect(w.resultsFor(small.commandId)[0]).toMatchObject({ ok: true });
    expect(stateOf(w, VM)).toBe('running');

    // A host that is down: a retryable `unavailable`, and no inventory while it lasts.
    w.compute.get(HOST)!.crash();
    const during = vmEnsure(VM, 'running', 1);
    await sendCommand(w, HOST, during, 3);
    await w.runUntil(() => w.resultsFor(during.commandId).length === 1, 5_000);
    expect(w.resultsFor(during.commandId)[0]).toMatchObject({ ok: false, error: 'unavailable' });
  });

  it('answers a malformed command with invalid-command and ignores foreign messages', async () => {
    const { w } = await startedWorld();
    w.publish(CHANNELS.agent(HOST), { type: 'vm.ensure', commandId: 'bad-1', token: 1, vmId: VM });
    w.publish(CHANNELS.agent(HOST), { type: 'volume.ensure', commandId: 'bad-2' });
    w.publish(CHANNELS.agent(HOST), { type: 'hello' });
    await w.runFor(100);
    expect(w.resultsFor('bad-1')[0]).toMatchObject({ ok: false, error: 'invalid-command' });
    expect(w.resultsFor('bad-2')[0]).toMatchObject({ ok: false, error: 'invalid-command' });
    expect(w.compute.get(HOST)!.domains()).toEqual([]);
  });

  it('collects orphan domains: no row, removed, placed elsewhere or unplaced — and nothing else', async () => {
    const w = createAgentWorld({ seed: 6, compute: [HOST] });
    await placedVm(w, 'vm-000000a1', HOST);
    await w.append('vm-000000a2', [
      vmCreated('vol-00000002'),
      ev('vm.placed', { hostId: HOST }),
      ev('vm.delete-requested', {}),
      ev('vm.removed', {}),
    ]);
    await placedVm(w, 'vm-000000a3', 'host-other');
    await w.append('vm-000000a5', [
      vmCreated('vol-00000005'),
      ev('vm.placed', { hostId: HOST }),
      ev('vm.unplaced', { fromHostId: HOST, reason: 'evacuated' }),
    ]);
    // Domains as a previous life of this host left them; 'legacy' is not cloudbed's.
    const setup = w.sim.spawn('setup', async (inc) => {
      const hv = w.compute.get(HOST)!.hypervisorFor(inc);
      for (const name of [
        'vm-000000a1',
        'vm-000000a2',
        'vm-000000a3',
        'vm-000000a4',
        'vm-000000a5',
        'legacy',
      ]) {
        await hv.define({ name, vcpus: 1, memoryMb: 256, disks: [] });
        await hv.start(name);
      }
    });
    setup.start();
    await w.runUntil(() => setup.status === 'exited', 10_000);
    w.spawnCompute(HOST, { inventoryIntervalMs: 10_000 }).start();
    await w.runFor(15_000);
    expect(
      w.compute
        .get(HOST)!
        .domains()
        .map((d) => [d.name, d.state]),
    ).toEqual([
      ['legacy', 'running'],
      ['vm-000000a1', 'running'],
    ]);
    const last = w.inventoriesOf(HOST).at(-1)!.message['domains'] as { name: string }[];
    expect(last.map((d) => d.name)).toEqual(['legacy', 'vm-000000a1']);
  });

  it('ends in the commanded state when crashed at any point of a command and the command is re-sent', async () => {
    for (const crashAfterMs of [1, 3, 20, 45, 100, 250, 400, 700]) {
      for (const power of ['running', 'stopped', 'absent'] as const) {
        const w = createAgentWorld({ seed: crashAfterMs * 7 + power.length, compute: [HOST] });
        await placedVm(w, VM, HOST);
        const agent = w.spawnCompute(HOST, { shutdownTimeoutMs: 3_000 });
        agent.start();
        await w.runFor(50);
        // Start from a running domain when testing stop and absent.
        if (power !== 'running') {
          await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
          await w.runUntil(() => stateOf(w, VM) === 'running', 5_000);
        }
        const command = vmEnsure(VM, power, 2);
        await sendCommand(w, HOST, command, 2);
        w.sim.schedule({ delayMs: crashAfterMs, label: 'test.crash', run: () => agent.crash() });
        await w.runFor(crashAfterMs + 1);
        agent.restartAfter(500);
        await w.runFor(600);
        // The main loop re-sends until it hears a result.
        const resend = vmEnsure(VM, power, 2);
        await sendCommand(w, HOST, resend, 3);
        await w.runUntil(
          () => w.resultsFor(resend.commandId).length === 1,
          20_000,
          `${power}@${crashAfterMs}`,
        );
        expect(w.resultsFor(resend.commandId)[0]).toMatchObject({ ok: true });
        const domains = w.compute.get(HOST)!.domains();
        if (power === 'absent') expect(domains).toEqual([]);
        else
          expect(domains.map((d) => [d.name, d.state, d.persistent])).toEqual([
            [VM, power === 'running' ? 'running' : 'shutoff', true],
          ]);
      }
    }
  });

  it('publishes an inventory promptly after a restart', async () => {
    const { w, agent } = await startedWorld(8);
    await sendCommand(w, HOST, vmEnsure(VM, 'running', 1));
    await w.runUntil(() => stateOf(w, VM) === 'running', 5_000);
    await w.runFor(1_000);
    agent.crash({ restartAfterMs: 2_000 });
    const crashedAt = w.now();
    const before = w.inventoriesOf(HOST).length;
    await w.runFor(2_200);
    const after = w.inventoriesOf(HOST).slice(before);
    expect(after.length).toBe(1);
    expect(after[0]!.t).toBeLessThan(crashedAt + 2_200);
    expect(after[0]!.message['domains']).toMatchObject([{ name: VM, state: 'running' }]);
    expect(agent.incarnations).toBe(2);
  });

  it('inventories every interval', async () => {
    const { w } = await startedWorld(9);
    await w.runFor(35_000);
    const times = w.inventoriesOf(HOST).map((r) => r.t);
    expect(times.length).toBe(4);
    for (let i = 1; i < times.length; i++) {
      expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(10_000);
      expect(times[i]! - times[i - 1]!).toBeLessThan(10_500);
    }
  });
});

describe('compute agent rules', () => {
  it('compares definitions by vcpus, memory and disks by target', () => {
    const a = {
      name: 'x',
      vcpus: 1,
      memoryMb: 512,
      disks: [
        { target: 'vda', source: 's1' },
        { target: 'vdb', source: 's2' },
      ],
    };
    expect(sameDefinition(a, { ...a, disks: [...a.disks].reverse() })).toBe(true);
    expect(sameDefinition(a, { ...a, vcpus: 2 })).toBe(false);
    expect(sameDefinition(a, { ...a, disks: [{ target: 'vda', source: 's1' }] })).toBe(false);
    expect(
      sameDefinition(a, {
        ...a,
        disks: [
          { target: 'vda', source: 's1' },
          { target: 'vdb', source: 's3' },
        ],
      }),
    ).toBe(false);
  });

  it('never calls a domain an orphan when its live row places it here', () => {
    const row = (data: Record<string, unknown>, type = 'virtualMachine') => ({
      stream: 'vm-1',
      type,
      accountId: 'a',
      version: 1,
      data: { removed: null, hostId: 'h1', ...data } as never,
    });
    expect(orphanReason(row({}), 'h1')).toBeNull();
    expect(orphanReason(row({ desired: 'deleted' }), 'h1')).toBeNull();
    expect(orphanReason(null, 'h1')).toBe('no-row');
    expect(orphanReason(row({ removed: 5 }), 'h1')).toBe('removed');
    expect(orphanReason(row({ hostId: 'h2' }), 'h1')).toBe('placed-elsewhere');
    expect(orphanReason(row({ hostId: null }), 'h1')).toBe('unplaced');
    expect(orphanReason(row({}, 'volume'), 'h1')).toBe('not-a-vm');
  });
});
