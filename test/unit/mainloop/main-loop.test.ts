/**
 * Goal: the main loop reconciles through ports only — lock, re-read, plan, fenced append, command
 * with the same token, release — and stays level-triggered under the ways the world misbehaves: a
 * lock held elsewhere, a write fenced off by a newer token, an expired lock session, a bus that
 * fails, bounded work per wake; two instances together still send every command at most once per
 * attempt; a VM's deletion cascades to its volumes; the process body sleeps until a notice, an
 * attempt deadline or the sweep.
 *
 * Method: the in-memory event store with the real projector; fakes for clock, bus, locks and for
 * agents-plus-background that turn commands into observations in the store. Tests drive single
 * wakes (`wakeOnce`) or the process body on a manual clock.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../../src/adapters/memory-event-store.ts';
import { MainLoop, runMainLoop } from '../../../src/control/mainloop/main-loop.ts';
import * as d from '../../../src/model/decide.ts';
import { newEvent } from '../../../src/model/events.ts';
import { projector } from '../../../src/model/projector.ts';
import { anyRowOf, BYTES_PER_GB, type Row, type VmRow } from '../../../src/model/resources.ts';
import { CHANNELS } from '../../../src/ports/bus.ts';
import type { AppendBatch, EventStore } from '../../../src/ports/event-store.ts';
import { CountingIds } from '../model/harness.ts';
import {
  FakeBus,
  FakeLocks,
  FakeSession,
  flush,
  ManualClock,
  runtime,
  StoreAgents,
} from './fakes.ts';

let clock: ManualClock;
let ids: CountingIds;
let store: EventStore;
let bus: FakeBus;
let locks: FakeLocks;
let agents: StoreAgents;
let compute: string;
let storage: string;

async function commit(decision: d.Decision): Promise<string> {
  if (!decision.ok) throw new Error(JSON.stringify(decision.error));
  await store.append({ appends: decision.appends });
  for (const a of decision.appends)
    await bus.publish(CHANNELS.changes, { type: 'changed', stream: a.stream, resourceType: '' });
  return decision.id;
}

async function row(id: string): Promise<Row> {
  const p = await store.get(id);
  if (p === null) throw new Error(`no ${id}`);
  return anyRowOf(p);
}

async function addHost(kind: 'compute' | 'storage'): Promise<string> {
  const hosts = (await store.list({ type: 'host' })).map((p) => anyRowOf(p)) as never;
  const input =
    kind === 'compute'
      ? { name: `c${clock.now}`, kind, vcpus: 8, memoryMb: 8192 }
      : { name: `s${clock.now}`, kind, poolSizeGb: 500 };
  const id = await commit(d.decideCreateHost(input, hosts, { nowMs: clock.now, ids }));
  clock.now += 1;
  await store.append({
    appends: [
      {
        stream: id,
        expectedVersion: 1,
        events: [
          newEvent(
            'host.up',
            kind === 'compute'
              ? { vcpus: 8, memoryMb: 8192, poolSizeBytes: null }
              : { vcpus: null, memoryMb: null, poolSizeBytes: 500 * BYTES_PER_GB },
            { atMs: clock.now },
          ),
        ],
      },
    ],
  });
  await agents.start(id, kind);
  return id;
}

function newLoop(
  options: Partial<ConstructorParameters<typeof MainLoop>[0]['options']> = {},
  name = 'a',
) {
  return new MainLoop({
    runtime: runtime(clock, ids),
    store,
    bus,
    locks,
    options: { instance: name, ...options },
  });
}

/** Wakes the loop until it has nothing left to write (bounded). */
async function drive(loop: MainLoop, wakes = 30): Promise<void> {
  for (let i = 0; i < wakes; i++) {
    const before = loop.stats.writes;
    await loop.wakeOnce();
    await flush();
    if (loop.stats.writes === before) return;
  }
}

beforeEach(async () => {
  clock = new ManualClock();
  ids = new CountingIds();
  store = createMemoryEventStore({ projector });
  bus = new FakeBus();
  locks = new FakeLocks();
  agents = new StoreAgents(store, bus, clock);
  compute = await addHost('compute');
  storage = await addHost('storage');
});

const vmInput = {
  accountId: 'acct-1',
  name: 'web',
  imageId: 'img-00000001',
  vcpus: 2,
  memoryMb: 1024,
};

describe('main loop: one wake at a time', () => {
  it('creates a VM end to end with fenced writes and tokened commands', async () => {
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    const loop = newLoop();
    await drive(loop);
    const vm = (await row(vmId)) as VmRow;
    expect(vm).toMatchObject({ state: 'running', hostId: compute });
    expect(agents.domains.get(compute)?.get(vmId)).toMatchObject({
      running: true,
      disks: [vm.rootVolumeId],
    });
    // Every command carries the token its command-sent event was fenced with.
    const events = await store.readStream(vmId);
    const sent = events.filter((e) => e.type === 'vm.command-sent');
    expect(sent.length).toBeGreaterThan(0);
    for (const e of sent) {
      const cmd = bus.commands().find((c) => c.commandId === e.data['commandId']);
      expect(cmd?.token).toBe(e.data['token']);
      expect(e.meta.fencingToken).toBe(e.data['token']);
      expect(e.meta.actor).toBe('mainloop:a');
    }
    expect(await store.fenceOf(vmId)).toBe(sent.at(-1)?.meta.fencingToken);
    // All locks were released after the writes.
    expect(locks.holders.size).toBe(0);
    // Converged: more wakes send nothing.
    const commands = bus.commands().length;
    clock.now += 60_000;
    await drive(loop);
    expect(bus.commands().length).toBe(commands);
  });

  it('skips a resource whose lock another instance holds', async () => {
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    const other = await locks.openSession({ timeoutMs: 1000 });
    await other.tryAcquire(vmId);
    const loop = newLoop();
    await drive(loop);
    expect((await row(vmId)).rev).toBe(1);
    expect(loop.stats.lockBusy).toBeGreaterThan(0);
    await other.close();
    // No notice says the lock is free: the next sweep finds the work.
    await drive(loop);
    expect((await row(vmId)).rev).toBe(1);
    clock.now += loop.options.sweepIntervalMs;
    await drive(loop);
    expect((await row(vmId)).state).toBe('running');
  });

  it('moves on when a newer token fenced its write off', async () => {
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    // Someone with a far newer lock grant wrote this resource already.
    const fenced: AppendBatch = {
      appends: [
        {
          stream: vmId,
          expectedVersion: 1,
          events: [newEvent('vm.waiting', { message: 'x' }, { atMs: clock.now })],
        },
      ],
      fence: { resource: vmId, token: 1_000 },
    };
    await store.append(fenced);
    const loop = newLoop();
    await loop.wakeOnce();
    expect(loop.stats.conflicts).toBeGreaterThan(0);
    expect((await store.readStream(vmId)).map((e) => e.type)).toEqual(['vm.created', 'vm.waiting']);
    expect(locks.holders.size).toBe(0);
  });

  it('opens a new lock session when its session expired', async () => {
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    const loop = newLoop();
    await loop.wakeOnce();
    expect(loop.stats.sessionsOpened).toBe(1);
    locks.sessions[0]!.expire();
    await drive(loop);
    expect(loop.stats.sessionsOpened).toBe(2);
    expect((await row(vmId)).state).toBe('running');
  });

  it('bounds the work of one wake', async () => {
    for (let i = 0; i < 3; i++)
      await commit(d.decideCreateVm({ ...vmInput, name: `vm${i}` }, { nowMs: clock.now, ids }));
    const loop = newLoop({ maxResourcesPerWake: 2 });
    await loop.wakeOnce();
    expect(loop.stats.reconciled).toBe(2);
    await loop.wakeOnce();
    expect(loop.stats.reconciled).toBe(4);
  });

  it('reconciles several resources at once, each under its own lock', async () => {
    for (let i = 0; i < 4; i++)
      await commit(d.decideCreateVm({ ...vmInput, name: `vm${i}` }, { nowMs: clock.now, ids }));
    const mostHeld = async (concurrency: number): Promise<number> => {
      const loop = newLoop({ concurrency }, `c${concurrency}`);
      const acquire = FakeSession.prototype.tryAcquire;
      let most = 0;
      FakeSession.prototype.tryAcquire = async function (this: FakeSession, name: string) {
        const lease = await acquire.call(this, name);
        most = Math.max(most, locks.holders.size);
        return lease;
      };
      try {
        await loop.wakeOnce();
      } finally {
        FakeSession.prototype.tryAcquire = acquire;
      }
      return most;
    };
    expect(await mostHeld(1)).toBe(1);
    // A fresh loop (a new process) on the same rows: eight VMs and volumes have work at once.
    expect(await mostHeld(8)).toBeGreaterThan(1);
  });

  it('assumes a placement while it is written, so those planned meanwhile choose other hosts', async () => {
    const second = await addHost('compute');
    await addHost('storage');
    const vms: string[] = [];
    for (let i = 0; i < 2; i++)
      vms.push(
        await commit(d.decideCreateVm({ ...vmInput, name: `vm${i}` }, { nowMs: clock.now, ids })),
      );
    const loop = newLoop({ concurrency: 4 });
    await drive(loop);
    const hosts = await Promise.all(vms.map(async (id) => ((await row(id)) as VmRow).hostId));
    expect(new Set(hosts)).toEqual(new Set([compute, second]));
    // Placed at once, on two hosts, and no write lost a race for a host's version.
    expect(loop.stats.conflicts).toBe(0);
    expect((await row(vms[0]!)).state).toBe('running');
    expect((await row(vms[1]!)).state).toBe('running');
  });

  it('resends after the attempt deadline when a command was lost on the bus', async () => {
    const vmId = await commit(d.decideCreateVm({ ...vmInput }, { nowMs: clock.now, ids }));
    const loop = newLoop({ retry: { baseMs: 1000, capMs: 4000, maxAttempts: 3 } });
    agents.paused.add(compute);
    await drive(loop);
    expect(((await row(vmId)) as VmRow).attempts).toBe(1);
    clock.now += 1000;
    await drive(loop);
    expect(((await row(vmId)) as VmRow).attempts).toBe(2);
    agents.paused.delete(compute);
    clock.now += 2000;
    await drive(loop);
    expect(await row(vmId)).toMatchObject({ state: 'running', attempts: 0 });
  });

  it('survives a bus that fails: the write stands and the deadline resends', async () => {
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    const loop = newLoop({ retry: { baseMs: 1000, capMs: 4000, maxAttempts: 5 } });
    bus.down = true;
    await drive(loop);
    expect(loop.stats.portErrors).toBeGreaterThan(0);
    bus.down = false;
    for (let i = 0; i < 6; i++) {
      clock.now += 4000;
      await drive(loop);
    }
    expect((await row(vmId)).state).toBe('running');
  });

  it('cascades a VM deletion to its volumes', async () => {
    const vmId = await commit(
      d.decideCreateVm({ ...vmInput, volumes: [{ sizeGb: 5 }] }, { nowMs: clock.now, ids }),
    );
    const loop = newLoop();
    await drive(loop);
    const vm = (await row(vmId)) as VmRow;
    await commit(d.decideDeleteVm(vm, { snapshots: [], volumes: [] }, { nowMs: clock.now, ids }));
    await drive(loop);
    expect((await row(vmId)).state).toBe('removed');
    expect((await row(vm.rootVolumeId)).state).toBe('removed');
    expect(await row(vm.volumeIds[0]!)).toMatchObject({
      state: 'available',
      virtualMachineId: null,
    });
    expect(agents.domains.get(compute)?.size).toBe(0);
    expect([...agents.datasets.get(storage)!.keys()]).toEqual([vm.volumeIds[0]]);
  });

  it('lets two instances share the work without duplicate commands per attempt', async () => {
    for (let i = 0; i < 4; i++)
      await commit(
        d.decideCreateVm(
          { ...vmInput, name: `vm${i}`, vcpus: 1, memoryMb: 512 },
          { nowMs: clock.now, ids },
        ),
      );
    const a = newLoop({}, 'a');
    const b = newLoop({}, 'b');
    for (let i = 0; i < 20; i++) {
      await Promise.all([a.wakeOnce(), b.wakeOnce()]);
      await flush();
    }
    const vms = (await store.list({ type: 'virtualMachine' })).map((p) => anyRowOf(p) as VmRow);
    expect(vms.map((v) => v.state)).toEqual(['running', 'running', 'running', 'running']);
    // One command per attempt: no two commands for one resource carry the same attempt's event.
    const sent = (await store.readAll(0, 10_000)).filter((e) => e.type.endsWith('.command-sent'));
    const perAttempt = new Set(
      sent.map(
        (e) => `${e.stream}#${JSON.stringify(e.data['attempt'])}#${JSON.stringify(e.data['goal'])}`,
      ),
    );
    expect(perAttempt.size).toBe(sent.length);
    expect(bus.commands().length).toBe(sent.length);
  });
  it('refreshes a noticed host with the rows on it, not the world, and counts them', async () => {
    // Loop a holds a world from its sweep. Loop b (its own bus: a hears none of its notices) then
    // places a 6-vCPU VM on the 8-vCPU compute host; a hears only the host's notice and a new
    // 4-vCPU VM's. Re-reading the host alone would show its new version with 8 vCPUs free and let
    // a place the new VM there, overcommitting it; re-reading the host's rows after it does not.
    const lists: unknown[] = [];
    const counted: EventStore = {
      ...store,
      list: (query) => {
        lists.push(query);
        return store.list(query);
      },
    };
    const a = new MainLoop({
      runtime: runtime(clock, ids),
      store: counted,
      bus,
      locks,
      options: { instance: 'a' },
    });
    await a.wakeOnce();
    const big = d.decideCreateVm({ ...vmInput, name: 'big', vcpus: 6 }, { nowMs: clock.now, ids });
    if (!big.ok) throw new Error('decide');
    await store.append({ appends: big.appends });
    const otherBus = new FakeBus();
    const b = new MainLoop({
      runtime: runtime(clock, ids),
      store,
      bus: otherBus,
      locks: new FakeLocks(),
      options: { instance: 'b' },
    });
    await b.wakeOnce();
    expect(((await row(big.id)) as VmRow).hostId).toBe(compute);
    await bus.publish(CHANNELS.changes, { type: 'changed', stream: compute, resourceType: 'host' });
    const small = await commit(
      d.decideCreateVm({ ...vmInput, name: 'small', vcpus: 4 }, { nowMs: clock.now, ids }),
    );
    await flush();
    lists.length = 0;
    await a.wakeOnce();
    await flush();
    expect(((await row(small)) as VmRow).hostId).toBeNull();
    expect(lists).toEqual([{ type: ['virtualMachine', 'volume'], host: compute }]);
  });
  it('never overcommits a host when two instances place at once', async () => {
    // The compute host has 8 vcpus: room for two of these VMs, whichever instance places them.
    for (let i = 0; i < 5; i++)
      await commit(
        d.decideCreateVm(
          { ...vmInput, name: `big${i}`, vcpus: 4, memoryMb: 1024 },
          { nowMs: clock.now, ids },
        ),
      );
    // Every listing either instance makes, after the first wake's.
    const lists: unknown[] = [];
    let counting = false;
    const counted: EventStore = {
      ...store,
      list: (query) => {
        if (counting) lists.push(query);
        return store.list(query);
      },
    };
    const loop = (name: string) =>
      new MainLoop({
        runtime: runtime(clock, ids),
        store: counted,
        bus,
        locks,
        options: { instance: name },
      });
    const a = loop('a');
    const b = loop('b');
    for (let i = 0; i < 10; i++) {
      await Promise.all([a.wakeOnce(), b.wakeOnce()]);
      await flush();
      counting = true;
    }
    const vms = (await store.list({ type: 'virtualMachine' })).map((p) => anyRowOf(p) as VmRow);
    const placed = vms.filter((v) => v.hostId === compute);
    expect(placed.reduce((sum, v) => sum + v.vcpus, 0)).toBeLessThanOrEqual(8);
    expect(placed).toHaveLength(2);
    expect(a.stats.conflicts + b.stats.conflicts).toBeGreaterThan(0);
    // A lost placement race re-reads the host it lost on, with the rows on it, not the world.
    expect(lists.length).toBeGreaterThan(0);
    for (const query of lists) expect(query).toMatchObject({ host: expect.any(String) });
  });
});

describe('main loop: the process body', () => {
  it('sweeps at start and on the interval, wakes early on notices, and stops when asked', async () => {
    let stop = false;
    const rt = runtime(clock, ids);
    const options = { sweepIntervalMs: 5_000, instance: 'p' };
    const loop = new MainLoop({ runtime: rt, store, bus, locks, options, shouldStop: () => stop });
    const running = loop.run();
    await clock.advance(0);
    expect(loop.stats.sweeps).toBe(1);
    // A notice wakes it before the sweep is due.
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    await clock.advance(10);
    expect(loop.stats.sweeps).toBe(1);
    expect((await row(vmId)).state).toBe('running');
    await clock.advance(5_000);
    expect(loop.stats.sweeps).toBe(2);
    // Notices arriving in a burst do not pile up timers.
    for (let i = 0; i < 50; i++)
      await bus.publish(CHANNELS.changes, {
        type: 'changed',
        stream: vmId,
        resourceType: 'virtualMachine',
      });
    await clock.advance(1);
    expect(clock.pending).toBeLessThanOrEqual(3);
    stop = true;
    await bus.publish(CHANNELS.changes, {
      type: 'changed',
      stream: vmId,
      resourceType: 'virtualMachine',
    });
    await clock.advance(1);
    await running;
    expect(locks.sessions.every((s) => locks.holders.size === 0 || s.expired)).toBe(true);
  });

  it('runs through runMainLoop and wakes itself at attempt deadlines', async () => {
    let stop = false;
    agents.paused.add(compute);
    const vmId = await commit(d.decideCreateVm(vmInput, { nowMs: clock.now, ids }));
    const done = runMainLoop({
      runtime: runtime(clock, ids),
      store,
      bus,
      locks,
      options: { sweepIntervalMs: 60_000, retry: { baseMs: 1_000, capMs: 1_000, maxAttempts: 3 } },
      shouldStop: () => stop,
    });
    await clock.advance(10);
    expect(((await row(vmId)) as VmRow).attempts).toBe(1);
    await clock.advance(1_000);
    expect(((await row(vmId)) as VmRow).attempts).toBe(2);
    await clock.advance(1_000);
    expect(((await row(vmId)) as VmRow).attempts).toBe(3);
    await clock.advance(1_000);
    expect(await row(vmId)).toMatchObject({ state: 'error', transitioning: 'error' });
    stop = true;
    await bus.publish(CHANNELS.changes, {
      type: 'changed',
      stream: vmId,
      resourceType: 'virtualMachine',
    });
    await clock.advance(1);
    await done;
  });
});
