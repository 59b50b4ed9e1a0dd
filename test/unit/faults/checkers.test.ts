// Goal: every checker has teeth — fed a world that breaks its invariant, it fires with a message
// that names the problem — and stays quiet on the same world without the break. Covers contiguous
// versions, stale fencing tokens at the store, lost acknowledged writes, a VM on two hosts, a start
// ordered on a second host, memory and vCPU capacity of hosts, overbooking in the log, a volume in
// two running VMs, agent-side fencing (with its attribution of operations to commands), and the
// liveness goal (unsettled rows, orphan domains and datasets). Method: the checkers read only what
// they are fed — committed events, fake hosts and the agent observations — so each test builds the
// smallest such world by hand. Every test runs with the incremental checks and with `--check full`
// (both, which must agree: a disagreement throws).
import { describe, expect, it } from 'vitest';
import { newEvent, type EventDataMap, type EventType } from '../../../src/model/events.ts';
import type { BusMessage } from '../../../src/ports/bus.ts';
import type { StoredEvent } from '../../../src/ports/event-store.ts';
import type { DomainInfo } from '../../../src/ports/hypervisor.ts';
import {
  Checkers,
  CHECK_MODES,
  type CheckedComputeHost,
  type CheckedStorageNode,
  type CheckMode,
} from '../../../src/sim/checkers.ts';

/** The mode of the suite being registered: every test runs in both (see the end of the file). */
let mode: CheckMode = 'incremental';

let position = 0;
const versions = new Map<string, number>();

/** A stored event at the next version of `stream` (or at `version`). */
function stored<T extends EventType>(
  stream: string,
  type: T,
  data: EventDataMap[T],
  version?: number,
): StoredEvent {
  const v = version ?? (versions.get(stream) ?? 0) + 1;
  versions.set(stream, v);
  const event = newEvent(type, data, { atMs: 0 });
  return {
    ...event,
    stream,
    version: v,
    position: ++position,
    schemaVersion: event.schemaVersion ?? 1,
  };
}

interface FakeHost extends CheckedComputeHost {
  status: 'up' | 'down';
  /** The host's domains; `push` tells the watchers, as a simulated host does. */
  readonly running: { push(...domains: DomainInfo[]): void };
}

/** A list whose `push` calls `changed` with each item pushed. */
function watchedList<T>(changed: (item: T) => void): T[] {
  const items: T[] = [];
  items.push = (...pushed: T[]): number => {
    for (const item of pushed) {
      Array.prototype.push.call(items, item);
      changed(item);
    }
    return items.length;
  };
  return items;
}

function host(memoryMb = 4096, vcpus = 4): FakeHost {
  const watchers: ((name: string) => void)[] = [];
  const running = watchedList<DomainInfo>((d) => watchers.forEach((w) => w(d.name)));
  const active = (d: DomainInfo): boolean => d.state === 'running' || d.state === 'paused';
  return {
    capacity: { vcpus, memoryMb },
    status: 'up',
    running,
    domains: () => running,
    domain: (name) => {
      const d = running.find((r) => r.name === name);
      return d === undefined ? undefined : { state: d.state, live: active(d) ? d : null };
    },
    watch: (onChange) => watchers.push(onChange),
  };
}

function domain(
  name: string,
  memoryMb = 1024,
  disks: string[] = [],
  state: DomainInfo['state'] = 'running',
): DomainInfo {
  return {
    name,
    vcpus: 1,
    memoryMb,
    state,
    disks: disks.map((source, i) => ({ target: `vd${String.fromCharCode(97 + i)}`, source })),
  };
}

function world() {
  versions.clear();
  const computeHosts = new Map<string, FakeHost>([
    ['host-1', host()],
    ['host-2', host()],
  ]);
  const watchers: ((name: string, present: boolean) => void)[] = [];
  const datasets = watchedList<{ name: string }>((d) => watchers.forEach((w) => w(d.name, true)));
  const storageNodes = new Map<string, CheckedStorageNode>([
    ['node-1', { datasets: () => datasets, watch: (onChange) => watchers.push(onChange) }],
  ]);
  const checkers = new Checkers({ computeHosts, storageNodes }, { mode });
  const h1 = computeHosts.get('host-1') as FakeHost;
  const h2 = computeHosts.get('host-2') as FakeHost;
  return { checkers, h1, h2, datasets };
}

const commit = (
  checkers: Checkers,
  events: StoredEvent[],
  fence?: { resource: string; token: number },
) => checkers.onCommit({ appends: [], ...(fence === undefined ? {} : { fence }) }, events);

const vmCreated = (id: string, memoryMb = 1024): StoredEvent =>
  stored(id, 'vm.created', {
    accountId: 'acct-1',
    name: id,
    imageId: 'img-00000001',
    vcpus: 1,
    memoryMb,
    rootDiskGb: 2,
    rootVolumeId: `vol-${id}`,
    volumeIds: [],
    desired: 'running',
  });

function suite(): void {
  describe('safety checkers', () => {
    it('a healthy world passes', () => {
      const w = world();
      w.h1.running.push(domain('vm-1', 1024, ['/p/vol-1/disk.raw']));
      w.h2.running.push(domain('vm-2', 1024, ['/p/vol-2/disk.raw']));
      commit(w.checkers, [vmCreated('vm-a1')], { resource: 'vm-a1', token: 3 });
      commit(w.checkers, [], { resource: 'vm-a1', token: 3 });
      w.checkers.acknowledge({ stream: 'vm-a1', version: 1, what: 'create' });
      expect(w.checkers.checkSafety()).toBeUndefined();
    });

    it('fires on a version gap', () => {
      const w = world();
      commit(w.checkers, [vmCreated('vm-b1')]);
      commit(w.checkers, [stored('vm-b1', 'vm.stop-requested', {}, 3)]);
      expect(w.checkers.checkSafety()).toMatch(/vm-b1: version 3 follows 1/);
    });

    it('fires on a write applied with a stale fencing token', () => {
      const w = world();
      commit(w.checkers, [], { resource: 'vm-c1', token: 9 });
      expect(w.checkers.checkSafety()).toBeUndefined();
      commit(w.checkers, [], { resource: 'vm-c1', token: 5 });
      expect(w.checkers.checkSafety()).toMatch(/stale fencing token 5 \(newest 9\)/);
    });

    it('fires when an acknowledged write is not in the log', () => {
      const w = world();
      commit(w.checkers, [vmCreated('vm-d1')]);
      w.checkers.acknowledge({ stream: 'vm-d1', version: 2, what: 'POST stop' });
      expect(w.checkers.checkSafety()).toMatch(/acknowledged write lost: POST stop/);
    });

    it('fires when a VM runs on two hosts', () => {
      const w = world();
      w.h1.running.push(domain('vm-1'));
      w.h2.running.push(domain('vm-1', 1024, [], 'paused'));
      expect(w.checkers.checkSafety()).toMatch(/VM vm-1 runs on two hosts/);
    });

    it('a VM defined but shut off on a second host is not running twice', () => {
      const w = world();
      w.h1.running.push(domain('vm-1'));
      w.h2.running.push(domain('vm-1', 1024, [], 'shutoff'));
      expect(w.checkers.checkSafety()).toBeUndefined();
    });

    it('fires when a host runs more memory or vCPUs than it has', () => {
      const memory = world();
      memory.h1.running.push(domain('vm-1', 3000), domain('vm-2', 2000));
      expect(memory.checkers.checkSafety()).toMatch(/runs 5000 MB of VMs, over its capacity/);
      const cpus = world();
      for (let i = 0; i < 5; i++) cpus.h1.running.push(domain(`vm-${i}`, 10));
      expect(cpus.checkers.checkSafety()).toMatch(/runs 5 vCPUs of VMs, over its capacity of 4/);
    });

    it('fires when a disk is attached to two running VMs', () => {
      const w = world();
      w.h1.running.push(domain('vm-1', 1024, ['/p/vol-9/disk.raw']));
      w.h2.running.push(domain('vm-2', 1024, ['/p/vol-9/disk.raw']));
      expect(w.checkers.checkSafety()).toMatch(
        /disk \/p\/vol-9\/disk.raw is attached to two running VMs/,
      );
    });

    it('fires when the log places more on a compute host than it has', () => {
      const w = world();
      commit(w.checkers, [
        stored('host-e1', 'host.created', {
          name: 'c1',
          kind: 'compute',
          vcpus: 4,
          memoryMb: 2048,
          poolSizeGb: null,
        }),
      ]);
      commit(w.checkers, [
        vmCreated('vm-e1', 1024),
        stored('vm-e1', 'vm.placed', { hostId: 'host-e1' }),
      ]);
      commit(w.checkers, [
        vmCreated('vm-e2', 1024),
        stored('vm-e2', 'vm.placed', { hostId: 'host-e1' }),
      ]);
      expect(w.checkers.checkSafety()).toBeUndefined();
      commit(w.checkers, [
        vmCreated('vm-e3', 1024),
        stored('vm-e3', 'vm.placed', { hostId: 'host-e1' }),
      ]);
      expect(w.checkers.checkSafety()).toMatch(
        /the log places 3 vCPUs and 3072 MB on host host-e1/,
      );
    });

    it('fires when a start is ordered on one host while the VM runs on another that is up', () => {
      const start: BusMessage = {
        type: 'vm.ensure',
        vmId: 'vm-1',
        power: 'running',
        token: 3,
        commandId: 'cmd-1',
      };
      const w = world();
      w.h1.running.push(domain('vm-1'));
      w.checkers.onCommand('host-1', start, 'mainloop-1#1');
      w.checkers.onCommand('host-2', { ...start, power: 'stopped' }, 'mainloop-1#1');
      expect(w.checkers.checkSafety()).toBeUndefined();
      w.h1.status = 'down';
      w.checkers.onCommand('host-2', start, 'mainloop-1#1');
      expect(w.checkers.checkSafety()).toBeUndefined();
      w.h1.status = 'up';
      w.checkers.onCommand('host-2', start, 'mainloop-1#1');
      expect(w.checkers.checkSafety()).toMatch(
        /mainloop-1#1 ordered VM vm-1 to start on host host-2 while it is running on host host-1/,
      );
    });
  });

  /** The vm or volume a test command is about. */
  function resourceOf(message: BusMessage): string {
    const id = message['vmId'] ?? message['volumeId'];
    return typeof id === 'string' ? id : '';
  }

  describe('check mode full has teeth', () => {
    it('reports an incremental index that missed a change as a disagreement', () => {
      // A host that stops telling the checkers about its domains: the incremental indexes miss
      // what runs there, the full recomputation does not.
      const silent = host();
      const listed = [domain('vm-1')];
      const deaf: CheckedComputeHost = { ...silent, domains: () => listed, watch: () => {} };
      const computeHosts = new Map<string, CheckedComputeHost>([
        ['host-1', host()],
        ['host-2', deaf],
      ]);
      const storageNodes = new Map<string, CheckedStorageNode>();
      const full = new Checkers({ computeHosts, storageNodes }, { mode: 'full' });
      (computeHosts.get('host-1') as FakeHost).running.push(domain('vm-1'));
      expect(() => full.checkSafety()).toThrow(/checkers disagree on safety/);
      // The incremental checks alone see only host-1: the very gap the full mode exists to expose.
      const alone = new Checkers({ computeHosts, storageNodes });
      expect(alone.checkSafety()).toBeUndefined();
    });
  });

  describe('agent-side fencing', () => {
    const command = (commandId: string, token: number, vmId = 'vm-1'): BusMessage => ({
      type: 'vm.ensure',
      commandId,
      token,
      vmId,
      power: 'running',
      spec: { vcpus: 1, memoryMb: 1, disks: [] },
    });
    const result = (commandId: string, resource = 'vm-1', error?: string): BusMessage => ({
      type: 'result',
      commandId,
      resource,
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
    });

    /** An agent that starts a command inside its handler when idle (as the real agents do). */
    function deliver(checkers: Checkers, agent: string, message: BusMessage, idle: boolean): void {
      checkers.agents.delivered(agent, message);
      if (idle) checkers.agents.storeCall(agent, 'fence', resourceOf(message));
      checkers.agents.handled(agent, message);
    }

    it('stays quiet on commands applied in token order, across agents and incarnations', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-1#1', command('c1', 5), true);
      checkers.agents.operation('agent-compute-1#1', 'define', ['vm-1']);
      // A newer command arrives while c1 runs; it runs after c1's result.
      deliver(checkers, 'agent-compute-1#1', command('c2', 9), false);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c1'));
      checkers.agents.storeCall('agent-compute-1#1', 'fence', 'vm-1');
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c2'));
      // A restarted agent applies a newer command.
      deliver(checkers, 'agent-compute-1#2', command('c3', 12), true);
      checkers.agents.operation('agent-compute-1#2', 'destroy', ['vm-1']);
      expect(checkers.checkSafety()).toBeUndefined();
    });

    it('fires when an agent applies a command older than one already applied', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-1#1', command('c2', 9), true);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c2'));
      deliver(checkers, 'agent-compute-1#1', command('c1', 5), true);
      checkers.agents.operation('agent-compute-1#1', 'shutdown', ['vm-1']);
      expect(checkers.checkSafety()).toMatch(
        /agent-compute-1#1 applied shutdown on vm-1 for command c1 with token 5, after an operation for token 9/,
      );
    });

    it('fires across agents: a stale command applied on another host', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-2#1', command('c2', 9), true);
      checkers.agents.operation('agent-compute-2#1', 'start', ['vm-1']);
      deliver(checkers, 'agent-compute-1#1', command('c1', 5), true);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      expect(checkers.checkSafety()).toMatch(/with token 5, after an operation for token 9/);
    });

    it('ignores a stale command the agent refused on arrival', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-1#1', command('c2', 9), true);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      // The agent answers c1 with stale-token inside its handler: it is never queued.
      checkers.agents.delivered('agent-compute-1#1', command('c1', 5));
      checkers.agents.published('agent-compute-1#1', result('c1', 'vm-1', 'stale-token'));
      checkers.agents.handled('agent-compute-1#1', command('c1', 5));
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c2'));
      checkers.agents.storeCall('agent-compute-1#1', 'fence', 'vm-1');
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      expect(checkers.checkSafety()).toBeUndefined();
    });

    it('runs the newest queued command next, the way the agent queue does', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-1#1', command('c1', 5), true);
      deliver(checkers, 'agent-compute-1#1', command('c3', 11), false);
      deliver(checkers, 'agent-compute-1#1', command('c2', 9), false);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c1'));
      // The queue holds c2 (it replaced c3): an agent that runs it after c3 was applied elsewhere is stale.
      deliver(checkers, 'agent-compute-2#1', command('c4', 10), true);
      checkers.agents.operation('agent-compute-2#1', 'start', ['vm-1']);
      checkers.agents.storeCall('agent-compute-1#1', 'fence', 'vm-1');
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      expect(checkers.checkSafety()).toMatch(
        /command c2 with token 9, after an operation for token 10/,
      );
    });

    it('does not attribute housekeeping to a command', () => {
      const { checkers } = world();
      deliver(checkers, 'agent-compute-1#1', command('c2', 9), true);
      checkers.agents.operation('agent-compute-1#1', 'start', ['vm-1']);
      checkers.agents.published('agent-compute-1#1', result('c2'));
      deliver(checkers, 'agent-compute-2#1', command('c1', 5), false);
      checkers.agents.storeCall('agent-compute-2#1', 'get', 'vm-1');
      checkers.agents.operation('agent-compute-2#1', 'destroy', ['vm-1']);
      expect(checkers.checkSafety()).toBeUndefined();
    });

    it('attributes a snapshot destroy to the snapshot command first, else to its volume command', () => {
      const volume = (commandId: string, token: number): BusMessage => ({
        type: 'volume.ensure',
        commandId,
        token,
        volumeId: 'vol-1',
        present: false,
        sizeBytes: 0,
        origin: null,
      });
      const { checkers } = world();
      deliver(checkers, 'agent-storage-1#1', volume('v2', 9), true);
      checkers.agents.operation('agent-storage-1#1', 'destroy', ['snap-1', 'vol-1']);
      checkers.agents.published('agent-storage-1#1', result('v2', 'vol-1'));
      expect(checkers.checkSafety()).toBeUndefined();
      deliver(checkers, 'agent-storage-1#1', volume('v1', 4), true);
      checkers.agents.operation('agent-storage-1#1', 'destroy', ['snap-1', 'vol-1']);
      expect(checkers.checkSafety()).toMatch(
        /applied destroy on vol-1 for command v1 with token 4/,
      );
    });
  });

  describe('liveness goal', () => {
    it('names an unsettled resource, an orphan domain and an orphan dataset', () => {
      const unsettled = world();
      commit(unsettled.checkers, [vmCreated('vm-f1')]);
      expect(unsettled.checkers.unconverged(0)).toMatch(
        /virtualMachine vm-f1 is \w+, not settled$/,
      );
      expect(unsettled.checkers.converged(0)).toBe(false);
      // The first by id, with what it waits for, and how many more are open.
      commit(unsettled.checkers, [vmCreated('vm-f0'), vmCreated('vm-f2')]);
      commit(unsettled.checkers, [
        stored('vm-f0', 'vm.waiting', { message: 'waiting for volume vol-vm-f0 (creating)' }),
      ]);
      expect(unsettled.checkers.unconverged(0)).toBe(
        'virtualMachine vm-f0 is creating, not settled (waiting for volume vol-vm-f0 (creating)); 2 more not settled',
      );
      expect(unsettled.checkers.unsettledCount).toBe(3);

      const orphanDomain = world();
      orphanDomain.h1.running.push(domain('vm-gone', 512, [], 'shutoff'));
      expect(orphanDomain.checkers.unconverged(0)).toMatch(
        /orphan domain vm-gone \(shutoff\) on host host-1/,
      );

      const orphanDataset = world();
      orphanDataset.datasets.push({ name: 'cloudbed/img-00000001' }, { name: 'cloudbed/vol-gone' });
      expect(orphanDataset.checkers.unconverged(0)).toMatch(
        /orphan dataset cloudbed\/vol-gone on storage node node-1/,
      );

      expect(world().checkers.unconverged(0)).toBeUndefined();
      expect(world().checkers.converged(0)).toBe(true);
    });
  });
}

for (const each of CHECK_MODES) {
  describe(`checks ${each}`, () => {
    mode = each;
    suite();
  });
}
