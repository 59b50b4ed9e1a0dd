// Goal: what the chaos runner observes of the real world reaches the checkers exactly as it is.
// The log tail feeds every event once, even when a transaction that drew a lower position commits
// after a higher one (it waits below the hole), and gives up a hole left by a rollback only after
// a while; the polled hosts tell the watchers exactly which domains and datasets changed, so the
// incremental checkers see a rogue domain over a host's capacity, a VM running on two hosts, and
// an orphan — and agree with their full recomputation.
// Method: the LogTail over a fake store whose readAll serves a list we edit between tails; the
// polled hosts fed inventories by hand under the real Checkers in `full` mode.
import { describe, expect, it } from 'vitest';
import { fencedBatch, LogTail } from '../../../src/chaos/runner.ts';
import { PolledComputeHost, PolledStorageNode } from '../../../src/chaos/real-world.ts';
import type { EventStore, StoredEvent } from '../../../src/ports/event-store.ts';
import { Checkers } from '../../../src/sim/checkers.ts';
import type { DomainInfo } from '../../../src/ports/hypervisor.ts';

function event(position: number): StoredEvent {
  return {
    position,
    stream: `s-${position}`,
    version: 1,
    type: 'thing.created',
    schemaVersion: 1,
    data: {},
    meta: {},
  } as unknown as StoredEvent;
}

function fakeStore(committed: StoredEvent[]): EventStore {
  return {
    readAll: (after: number, limit: number) =>
      Promise.resolve(
        committed
          .filter((e) => e.position > after)
          .sort((a, b) => a.position - b.position)
          .slice(0, limit),
      ),
  } as unknown as EventStore;
}

describe('the log tail', () => {
  it('feeds a late commit below the highest position, and every event once', async () => {
    const committed = [event(1), event(2), event(4), event(5)];
    const fed: number[] = [];
    const tail = new LogTail(fakeStore(committed), (e) => fed.push(e.position));
    await tail.tail(0);
    expect(fed).toEqual([1, 2, 4, 5]);
    committed.push(event(3), event(6));
    await tail.tail(1_000);
    expect(fed).toEqual([1, 2, 4, 5, 3, 6]);
    await tail.tail(2_000);
    expect(tail.events).toBe(6);
  });

  it('gives up a hole that never fills only after a while, then goes on', async () => {
    const committed = [event(1), event(4)];
    const fed: number[] = [];
    const tail = new LogTail(fakeStore(committed), (e) => fed.push(e.position));
    await tail.tail(0);
    await tail.tail(5_000);
    committed.push(event(5));
    await tail.tail(20_000);
    // Holes 2 and 3 were given up together; 4 and 5 fed once each.
    expect(fed).toEqual([1, 4, 5]);
    committed.push(event(2));
    await tail.tail(21_000);
    // A position below a given-up hole is no longer read (the cursor moved past it).
    expect(fed).toEqual([1, 4, 5]);
  });
});

function domain(name: string, state: DomainInfo['state'], memoryMb = 256): DomainInfo {
  return { name, state, vcpus: 1, memoryMb, disks: [{ target: 'vda', source: `/d/${name}` }] };
}

describe('the polled hosts under the checkers', () => {
  function world() {
    const a = new PolledComputeHost({ vcpus: 4, memoryMb: 1024 });
    const b = new PolledComputeHost({ vcpus: 4, memoryMb: 1024 });
    const node = new PolledStorageNode();
    const checked = {
      computeHosts: new Map([
        ['host-a', a],
        ['host-b', b],
      ]),
      storageNodes: new Map([['host-s', node]]),
    };
    return { a, b, node, checkers: new Checkers(checked, { mode: 'full' }) };
  }

  it('tells the watchers exactly what changed', () => {
    const { a } = world();
    const seen: string[] = [];
    a.watch((name) => seen.push(name));
    expect(a.update([domain('vm-1', 'running'), domain('vm-2', 'shutoff')])).toEqual([
      'vm-1',
      'vm-2',
    ]);
    expect(a.update([domain('vm-1', 'running'), domain('vm-2', 'running')])).toEqual(['vm-2']);
    expect(a.update([domain('vm-2', 'running')])).toEqual(['vm-1']);
    expect(seen).toEqual(['vm-1', 'vm-2', 'vm-2', 'vm-1']);
    expect(a.domain('vm-2')).toMatchObject({ state: 'running', live: { name: 'vm-2' } });
    expect(a.domain('vm-1')).toBeUndefined();
  });

  it('shows the checkers a host over capacity and a VM running on two hosts', () => {
    const { a, b, checkers } = world();
    a.update([domain('vm-1', 'running')]);
    expect(checkers.checkSafety()).toBeUndefined();
    a.update([domain('vm-1', 'running'), domain('rogue', 'running', 4096)]);
    expect(checkers.checkSafety()).toMatch(/host host-a runs \d+ MB of VMs, over its capacity/);

    const fresh = world();
    fresh.a.update([domain('vm-1', 'running')]);
    fresh.b.update([domain('vm-1', 'running')]);
    expect(fresh.checkers.checkSafety()).toMatch(/VM vm-1 runs on two hosts/);
    void b;
  });

  it('shows the checkers an orphan domain and an orphan dataset', () => {
    const { a, node, checkers } = world();
    a.update([domain('vm-9', 'shutoff')]);
    expect(checkers.unconverged(0)).toMatch(/orphan domain vm-9/);
    a.update([]);
    node.update([{ name: 'pool/vol-9', kind: 'volume', sizeBytes: 1, origin: null }]);
    expect(checkers.converged(0)).toBe(false);
    expect(checkers.unconverged(0)).toMatch(/orphan dataset/);
    node.update([]);
    expect(checkers.converged(0)).toBe(true);
  });
});

describe('fencing seen from the log', () => {
  const stamped = (stream: string, version: number, token?: number): StoredEvent =>
    ({
      position: version,
      stream,
      version,
      type: 'thing.updated',
      schemaVersion: 1,
      data: {},
      meta: token === undefined ? {} : { fencingToken: token },
    }) as unknown as StoredEvent;

  it('fences the events a main loop stamps on VM, volume and snapshot streams only', () => {
    expect(fencedBatch(stamped('vm-1', 1, 7))).toEqual({
      appends: [],
      fence: { resource: 'vm-1', token: 7 },
    });
    expect(fencedBatch(stamped('snap-1', 1, 7)).fence).toBeDefined();
    // A placement on a host stream carries the VM's token; the API and agents stamp none.
    expect(fencedBatch(stamped('host-1', 1, 7))).toEqual({ appends: [] });
    expect(fencedBatch(stamped('vm-1', 2))).toEqual({ appends: [] });
  });

  it('lets the checkers report a stale token the store let through', () => {
    const checkers = new Checkers({ computeHosts: new Map(), storageNodes: new Map() });
    // The fence check reads the batch alone (the events' contents are the projector's business).
    for (const e of [stamped('vm-1', 1, 5), stamped('vm-1', 2, 9), stamped('host-1', 1, 2)])
      checkers.onCommit(fencedBatch(e), []);
    expect(checkers.checkSafety()).toBeUndefined();
    checkers.onCommit(fencedBatch(stamped('vm-1', 3, 6)), []);
    expect(checkers.checkSafety()).toMatch(
      /stale fencing token 6 \(newest 9\) was applied to vm-1/,
    );
  });
});
