// Goal: a staging main loop stops itself holding a lock exactly when a chaos run armed it to, at the
// point it named (after a grant, after a fenced write, after confirming the lock before sending),
// once; disarming or an unknown point leaves it running; unarmed, every call passes through.
// Method: HolderPause over in-memory store and lock fakes, with the stop replaced by a counter and
// the arming file written as a runner writes it.
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HolderPause, holderPauseFile } from '../../../src/staging/holder-pause.ts';
import type { EventStore } from '../../../src/ports/event-store.ts';
import type { LockSession } from '../../../src/ports/locks.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-holder-pause-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup() {
  const file = holderPauseFile(dir, 'mainloop-1');
  const stops: string[] = [];
  const warnings: unknown[] = [];
  const pause = new HolderPause(file, { warn: (_m, f) => warnings.push(f) }, () =>
    stops.push('stop'),
  );
  const store = pause.store({
    append: () => Promise.resolve([]),
  } as unknown as EventStore);
  const session: LockSession = {
    id: 's1',
    expired: false,
    tryAcquire: (name) => Promise.resolve({ name, token: 7 }),
    release: () => Promise.resolve(),
    holds: () => Promise.resolve(true),
    onExpired: () => undefined,
    close: () => Promise.resolve(),
  };
  const locks = pause.locks({
    openSession: () => Promise.resolve(session),
    close: () => Promise.resolve(),
  });
  const arm = (point: string) => {
    writeFileSync(file, `${point}\n`);
    pause.arm();
    expect(existsSync(file)).toBe(false);
  };
  return { pause, store, locks, stops, warnings, arm };
}

describe('a main loop paused holding its lock', () => {
  it('passes everything through unarmed', async () => {
    const { store, locks, stops } = setup();
    const s = await locks.openSession({ timeoutMs: 1000 });
    const lease = await s.tryAcquire('vm-1');
    await s.holds(lease!);
    await store.append({ appends: [], fence: { resource: 'vm-1', token: 7 } });
    expect(stops).toEqual([]);
    expect(s.id).toBe('s1');
  });

  it('stops once at the armed point only', async () => {
    const { store, locks, stops, warnings, arm } = setup();
    const s = await locks.openSession({ timeoutMs: 1000 });
    arm('write');
    const lease = await s.tryAcquire('vm-1');
    await s.holds(lease!);
    await store.append({ appends: [] }); // unfenced: not a hold
    expect(stops).toEqual([]);
    await store.append({ appends: [], fence: { resource: 'vm-1', token: 7 } });
    expect(stops).toEqual(['stop']);
    expect(warnings).toEqual([{ point: 'write', resource: 'vm-1' }]);
    await store.append({ appends: [], fence: { resource: 'vm-1', token: 7 } });
    expect(stops).toHaveLength(1);

    arm('acquire');
    await s.tryAcquire('vm-2');
    arm('send');
    await s.holds({ name: 'vm-3', token: 9 });
    expect(warnings.slice(1)).toEqual([
      { point: 'acquire', resource: 'vm-2' },
      { point: 'send', resource: 'vm-3' },
    ]);
  });

  it('is disarmed by `none` or an unknown point', async () => {
    const { locks, stops, arm } = setup();
    const s = await locks.openSession({ timeoutMs: 1000 });
    arm('acquire');
    arm('none');
    await s.tryAcquire('vm-1');
    arm('sideways');
    await s.tryAcquire('vm-1');
    expect(stops).toEqual([]);
  });
});
