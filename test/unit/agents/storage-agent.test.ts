// Goal: the storage agent ensures the image catalogue at start, applies volume.ensure (create,
// clone from an image or snapshot, grow, destroy), snapshot.ensure and volume.restore
// idempotently, reports ZFS refusals (busy, has-snapshots) as results without forcing anything,
// rejects stale tokens, collects orphan datasets but never images or datasets of live rows, and
// converges when crashed mid-command and re-sent. Method: a simulated world (agent-world.ts) with
// one storage node and a driver playing the main loop; outcomes are read from the node's
// synchronous inspection (`datasets()`) and from the reports.
import { describe, expect, it } from 'vitest';
import { BYTES_PER_GB, IMAGES, imageBaseSnapshot } from '../../../src/model/resources.ts';
import type {
  SnapshotEnsureCommand,
  VolumeEnsureCommand,
  VolumeRestoreCommand,
} from '../../../src/model/commands.ts';
import { CHANNELS } from '../../../src/ports/bus.ts';
import { relativeName } from '../../../src/control/agents/storage-agent.ts';
import {
  createAgentWorld,
  ev,
  sendCommand,
  snapshotCreated,
  volumeCreated,
  type AgentWorld,
} from './agent-world.ts';

const NODE = 'stor-1';
let counter = 0;

function volumeEnsure(
  volumeId: string,
  present: boolean,
  sizeGb: number,
  token: number,
  origin: string | null = null,
): VolumeEnsureCommand {
  return {
    type: 'volume.ensure',
    commandId: `vc-${++counter}`,
    token,
    volumeId,
    present,
    sizeBytes: sizeGb * BYTES_PER_GB,
    origin,
  };
}

function snapshotEnsure(
  volumeId: string,
  snapshotId: string,
  present: boolean,
  token: number,
): SnapshotEnsureCommand {
  return {
    type: 'snapshot.ensure',
    commandId: `sc-${++counter}`,
    token,
    snapshotId,
    volumeId,
    present,
  };
}

function names(w: AgentWorld): string[] {
  return w.storage
    .get(NODE)!
    .datasets()
    .map((d) => d.name);
}

function dataset(w: AgentWorld, name: string) {
  return w.storage
    .get(NODE)!
    .datasets()
    .find((d) => d.name === name);
}

const IMAGE_DATASETS = IMAGES.flatMap((i) => [`cloudbed/${i.id}`, imageBaseSnapshot(i.id)]).sort();

async function startedWorld(seed = 1) {
  const w = createAgentWorld({ seed, storage: [NODE] });
  const agent = w.spawnStorage(NODE, { inventoryIntervalMs: 10_000 });
  agent.start();
  await w.runUntil(() => w.inventoriesOf(NODE).length > 0, 5_000, 'first inventory');
  return { w, agent };
}

async function placedVolume(w: AgentWorld, volumeId: string, sizeGb = 10): Promise<void> {
  await w.append(volumeId, [volumeCreated({ storageNodeId: NODE, sizeGb })]);
}

async function run(
  w: AgentWorld,
  command: VolumeEnsureCommand | SnapshotEnsureCommand | VolumeRestoreCommand,
) {
  await sendCommand(w, NODE, command);
  await w.runUntil(() => w.resultsFor(command.commandId).length === 1, 10_000, command.commandId);
  return w.resultsFor(command.commandId)[0]!;
}

describe('storage agent', () => {
  it('ensures every catalogue image and its base snapshot at start, before the first inventory', async () => {
    const { w } = await startedWorld();
    expect(names(w)).toEqual(IMAGE_DATASETS);
    const first = w.inventoriesOf(NODE)[0]!.message;
    expect((first['datasets'] as { name: string }[]).map((d) => d.name)).toEqual(IMAGE_DATASETS);
    expect(first['capacity']).toMatchObject({ poolSizeBytes: 2048 * BYTES_PER_GB });
    for (const image of IMAGES)
      expect(dataset(w, `cloudbed/${image.id}`)?.sizeBytes).toBe(image.sizeGb * BYTES_PER_GB);
  });

  it('finishes a half-made image after a restart and leaves complete ones alone', async () => {
    const w = createAgentWorld({ seed: 2, storage: [NODE] });
    const agent = w.spawnStorage(NODE);
    agent.start();
    // Crash after the first image volume exists, before its snapshot.
    await w.runUntil(() => names(w).includes(`cloudbed/${IMAGES[0]!.id}`), 5_000);
    agent.crash({ restartAfterMs: 100 });
    await w.runFor(5_000);
    expect(names(w)).toEqual(IMAGE_DATASETS);
    expect(w.storageCalls['createVolume']).toBe(IMAGES.length);
  });

  it('creates, clones, grows and destroys volumes idempotently', async () => {
    const { w } = await startedWorld(3);
    await placedVolume(w, 'vol-00000001', 5);
    await placedVolume(w, 'vol-00000002', 40);
    expect(await run(w, volumeEnsure('vol-00000001', true, 5, 1))).toMatchObject({ ok: true });
    expect(await run(w, volumeEnsure('vol-00000001', true, 5, 1))).toMatchObject({ ok: true });
    expect(w.storageCalls['createVolume']).toBe(IMAGES.length + 1);
    expect(dataset(w, 'cloudbed/vol-00000001')?.sizeBytes).toBe(5 * BYTES_PER_GB);

    const root = volumeEnsure('vol-00000002', true, 40, 1, imageBaseSnapshot('img-00000001'));
    expect(await run(w, root)).toMatchObject({ ok: true });
    expect(dataset(w, 'cloudbed/vol-00000002')).toMatchObject({
      origin: 'cloudbed/img-00000001@base',
      sizeBytes: 40 * BYTES_PER_GB,
    });
    // Grow; a smaller size later never shrinks.
    expect(await run(w, volumeEnsure('vol-00000001', true, 8, 2))).toMatchObject({ ok: true });
    expect(await run(w, volumeEnsure('vol-00000001', true, 6, 3))).toMatchObject({ ok: true });
    expect(dataset(w, 'cloudbed/vol-00000001')?.sizeBytes).toBe(8 * BYTES_PER_GB);

    // The main loop's delete carries size 0.
    const remove = { ...volumeEnsure('vol-00000001', false, 8, 4), sizeBytes: 0 };
    expect(await run(w, remove)).toMatchObject({ ok: true });
    expect(await run(w, { ...remove, commandId: 'remove-again' })).toMatchObject({ ok: true });
    expect(dataset(w, 'cloudbed/vol-00000001')).toBeUndefined();
    const last = w.inventoriesOf(NODE).at(-1)!.message['datasets'] as { name: string }[];
    expect(last.map((d) => d.name)).not.toContain('cloudbed/vol-00000001');
  });

  it('snapshots, restores, and reports busy and has-snapshots instead of forcing', async () => {
    const { w } = await startedWorld(4);
    await placedVolume(w, 'vol-00000001');
    await w.append('snap-00000001', [snapshotCreated('vol-00000001', NODE)]);
    await w.append('vol-00000002', [volumeCreated({ storageNodeId: NODE })]);
    expect(await run(w, volumeEnsure('vol-00000001', true, 10, 1))).toMatchObject({ ok: true });
    const snap = snapshotEnsure('vol-00000001', 'snap-00000001', true, 1);
    expect(await run(w, snap)).toMatchObject({ ok: true });
    expect(await run(w, { ...snap, commandId: 'again' })).toMatchObject({ ok: true });
    expect(dataset(w, 'cloudbed/vol-00000001@snap-00000001')?.kind).toBe('snapshot');
    expect(w.storageCalls['snapshot']).toBe(IMAGES.length + 1);

    // Grow, then roll back: the size captured by the snapshot comes back.
    expect(await run(w, volumeEnsure('vol-00000001', true, 20, 2))).toMatchObject({ ok: true });
    const restore: VolumeRestoreCommand = {
      type: 'volume.restore',
      commandId: 'restore-1',
      token: 3,
      volumeId: 'vol-00000001',
      snapshotId: 'snap-00000001',
      snapshot: 'cloudbed/vol-00000001@snap-00000001',
    };
    expect(await run(w, restore)).toMatchObject({ ok: true });
    expect(dataset(w, 'cloudbed/vol-00000001')?.sizeBytes).toBe(10 * BYTES_PER_GB);
    // A duplicate delivery of the same restore is answered without rolling back again.
    w.publish(CHANNELS.agent(NODE), restore);
    await w.runUntil(() => w.resultsFor('restore-1').length === 2, 5_000);
    expect(w.resultsFor('restore-1')[1]).toMatchObject({ ok: true });
    expect(w.storageCalls['rollback']).toBe(1);

    // A live snapshot keeps its volume; a clone keeps its snapshot.
    expect(await run(w, volumeEnsure('vol-00000001', false, 10, 4))).toMatchObject({
      ok: false,
      error: 'has-snapshots',
    });
    const clone = volumeEnsure('vol-00000002', true, 10, 1, 'cloudbed/vol-00000001@snap-00000001');
    expect(await run(w, clone)).toMatchObject({ ok: true });
    expect(await run(w, snapshotEnsure('vol-00000001', 'snap-00000001', false, 2))).toMatchObject({
      ok: false,
      error: 'busy',
    });
    expect(dataset(w, 'cloudbed/vol-00000001@snap-00000001')).toBeDefined();
    // Dependents first, then it works.
    expect(await run(w, volumeEnsure('vol-00000002', false, 10, 2))).toMatchObject({ ok: true });
    expect(await run(w, snapshotEnsure('vol-00000001', 'snap-00000001', false, 3))).toMatchObject({
      ok: true,
    });
    expect(await run(w, volumeEnsure('vol-00000001', false, 10, 5))).toMatchObject({ ok: true });
    expect(names(w)).toEqual(IMAGE_DATASETS);
  });

  it('destroys a volume whose remaining snapshots have no live row', async () => {
    const { w } = await startedWorld(5);
    await placedVolume(w, 'vol-00000001');
    expect(await run(w, volumeEnsure('vol-00000001', true, 10, 1))).toMatchObject({ ok: true });
    await w.append('snap-00000002', [snapshotCreated('vol-00000001', NODE)]);
    expect(await run(w, snapshotEnsure('vol-00000001', 'snap-00000002', true, 1))).toMatchObject({
      ok: true,
    });
    await w.append('snap-00000002', [
      ev('snapshot.delete-requested', {}),
      ev('snapshot.removed', {}),
    ]);
    expect(await run(w, volumeEnsure('vol-00000001', false, 10, 2))).toMatchObject({ ok: true });
    expect(names(w)).toEqual(IMAGE_DATASETS);
  });

  it('rejects stale tokens per resource', async () => {
    const { w } = await startedWorld(6);
    await placedVolume(w, 'vol-00000001');
    expect(await run(w, volumeEnsure('vol-00000001', true, 10, 7))).toMatchObject({ ok: true });
    const stale = volumeEnsure('vol-00000001', false, 10, 6);
    w.publish(CHANNELS.agent(NODE), stale);
    await w.runUntil(() => w.resultsFor(stale.commandId).length === 1, 5_000);
    expect(w.resultsFor(stale.commandId)[0]).toMatchObject({ ok: false, error: 'stale-token' });
    expect(dataset(w, 'cloudbed/vol-00000001')).toBeDefined();
    // Another resource has its own tokens.
    await placedVolume(w, 'vol-00000003');
    expect(await run(w, volumeEnsure('vol-00000003', true, 10, 1))).toMatchObject({ ok: true });
  });

  it('collects orphan volumes and snapshots, never images or datasets of live rows', async () => {
    const w = createAgentWorld({ seed: 7, storage: [NODE] });
    // Datasets left behind: a live volume with a live snapshot, a removed volume, a volume without
    // a row with a snapshot without a row, a clone of an orphan snapshot, a foreign dataset.
    await placedVolume(w, 'vol-00000001');
    await w.append('snap-00000001', [snapshotCreated('vol-00000001', NODE)]);
    await w.append('vol-00000002', [
      volumeCreated({ storageNodeId: NODE }),
      ev('volume.delete-requested', {}),
      ev('volume.removed', {}),
    ]);
    await w.append('vol-00000004', [volumeCreated({ storageNodeId: 'stor-other' })]);
    const setup = w.sim.spawn('setup', async (inc) => {
      const s = w.storage.get(NODE)!.storageFor(inc);
      for (const v of ['vol-00000001', 'vol-00000002', 'vol-00000003', 'vol-00000004', 'legacy'])
        await s.createVolume(v, BYTES_PER_GB);
      await s.snapshot('vol-00000001', 'snap-00000001');
      await s.snapshot('vol-00000003', 'snap-00000003');
      await s.clone('vol-00000003@snap-00000003', 'vol-00000005');
    });
    setup.start();
    await w.runUntil(() => setup.status === 'exited', 10_000);
    w.spawnStorage(NODE, { inventoryIntervalMs: 10_000 }).start();
    // Round one takes the clone, the orphan snapshot is busy until then; round two the rest.
    await w.runFor(25_000);
    expect(names(w)).toEqual(
      [
        ...IMAGE_DATASETS,
        'cloudbed/legacy',
        'cloudbed/vol-00000001',
        'cloudbed/vol-00000001@snap-00000001',
      ].sort(),
    );
  });

  it('converges when crashed at any point of a command and the command is re-sent', async () => {
    for (const crashAfterMs of [1, 10, 40, 90, 150, 300]) {
      const { w, agent } = await startedWorld(100 + crashAfterMs);
      await placedVolume(w, 'vol-00000001', 30);
      const command = volumeEnsure('vol-00000001', true, 30, 1, imageBaseSnapshot('img-00000002'));
      await sendCommand(w, NODE, command);
      w.sim.schedule({ delayMs: crashAfterMs, label: 'test.crash', run: () => agent.crash() });
      await w.runFor(crashAfterMs + 1);
      agent.restartAfter(500);
      await w.runFor(600);
      const resend = { ...command, commandId: `resend-${crashAfterMs}` };
      expect(await run(w, resend)).toMatchObject({ ok: true });
      expect(dataset(w, 'cloudbed/vol-00000001')).toMatchObject({
        sizeBytes: 30 * BYTES_PER_GB,
        origin: 'cloudbed/img-00000002@base',
      });
    }
  });

  it('maps full dataset names to pool-relative ones', () => {
    expect(relativeName('cloudbed/vol-1')).toBe('vol-1');
    expect(relativeName('cloudbed/vol-1@snap-2')).toBe('vol-1@snap-2');
    expect(relativeName('vol-1@snap-2')).toBe('vol-1@snap-2');
    expect(relativeName('vol-1')).toBe('vol-1');
  });
});
