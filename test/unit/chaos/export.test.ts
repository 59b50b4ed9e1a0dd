// Goal: a chaos run directory becomes a scenario the simulator accepts: the staging hosts as the
// topology (renamed compute-1…, storage-1… in file order, agents with them), the calls as sent at
// their times with the ids they created saved and used by name, the faults as they struck — a
// crash that found no process left out, a pause-holder at the time it was armed with the duration
// it struck for — and the heal where the run healed.
// Method: a run directory written by hand with every file the runner writes; exportData and
// exportRun read it, and the scenario code validates the result.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exportData, exportRun, RunDirError } from '../../../src/chaos/export.ts';
import { toScenario } from '../../../src/sim/scenario.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-chaos-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jsonl = (rows: readonly unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n');

function runDir(): string {
  const run = join(dir, 'run');
  rmSync(run, { recursive: true, force: true });
  const files: Record<string, string> = {
    'staging.yaml': [
      'prefix: t1',
      'hosts:',
      '  - { name: rack-b, kind: compute, vcpus: 8, memoryMb: 8192 }',
      '  - { name: disks, kind: storage, poolSizeGb: 512 }',
      '  - { name: rack-a, kind: compute, vcpus: 8, memoryMb: 8192 }',
    ].join('\n'),
    'experiment.yaml': ['name: demo', 'accounts: [alice]', 'budgets: { settleWithin: 90s }'].join(
      '\n',
    ),
    'workload.jsonl': jsonl([
      {
        t: 1000,
        ms: 40,
        as: 'alice',
        method: 'POST',
        path: '/v1/virtualmachines',
        body: { name: 'web', imageId: 'img-00000001', vcpus: 1, memoryMb: 256 },
        status: 202,
        id: 'vm-abc123',
        answer: '{}',
      },
      {
        t: 5000,
        ms: 30,
        as: 'alice',
        method: 'POST',
        path: '/v1/virtualmachines/vm-abc123?action=stop',
        status: 202,
        id: 'vm-abc123',
        answer: '{}',
      },
      {
        t: 3000,
        ms: 30,
        as: 'alice',
        method: 'POST',
        path: '/v1/snapshots',
        body: { volumeId: 'vol-zzz', name: 's' },
        status: null,
        id: null,
        answer: null,
      },
    ]),
    'faults.jsonl': jsonl([
      { kind: 'fault.crash', target: 'agent-rack-a', restartAfterMs: 1000, t: 2000 },
      { kind: 'fault.killed', target: 'agent-rack-a', pid: 10, t: 2050 },
      { kind: 'fault.crash', target: 'api', restartAfterMs: 1000, t: 2500 },
      { kind: 'fault.missed', target: 'api', why: 'not running', t: 2510 },
      { kind: 'fault.pause-holder-armed', target: 'mainloop-1', point: 'write', t: 3000 },
      { kind: 'fault.pause-holder', target: 'mainloop-1', point: 'write', forMs: 20000, t: 3400 },
      { kind: 'fault.host-crash', target: 'rack-b', forMs: 4000, t: 4000 },
      { kind: 'fault.heal', t: 30000 },
    ]),
    'result.json': JSON.stringify({ runDir: run, verdict: 'ok', accounts: { alice: 'acct-1' } }),
  };
  mkdirSync(run, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(run, name), text);
  return run;
}

describe('chaos export', () => {
  it('writes the run as a scenario the simulator accepts', () => {
    const data = exportData(runDir());
    expect(data['topology']).toEqual({
      compute: { count: 2, vcpus: 8, memoryMb: 8192 },
      storage: { count: 1, poolSizeGb: 512 },
      mainLoops: 2,
      accounts: ['alice'],
    });
    expect(data['workload']).toEqual([
      {
        at: '1000ms',
        as: 'alice',
        request: 'POST /v1/virtualmachines',
        body: { name: 'web', imageId: 'img-00000001', vcpus: 1, memoryMb: 256 },
        save: 'r1',
      },
      {
        at: '3000ms',
        as: 'alice',
        request: 'POST /v1/snapshots',
        body: { volumeId: 'vol-zzz', name: 's' },
      },
      { at: '5000ms', as: 'alice', request: 'POST /v1/virtualmachines/{r1}?action=stop' },
    ]);
    expect(data['faults']).toEqual({
      schedule: [
        // rack-b is compute-1 and rack-a compute-2 (file order); the missed api crash is gone.
        { at: '2000ms', kind: 'crash', target: 'agent-compute-2', restartAfter: '1000ms' },
        {
          at: '3000ms',
          kind: 'pause-holder',
          target: 'mainloop-1',
          point: 'write',
          for: '20000ms',
        },
        { at: '4000ms', kind: 'host-crash', target: 'compute-1', for: '4000ms' },
      ],
      healAt: '30000ms',
    });
    expect(data['budgets']).toEqual({ settleWithin: '90000ms' });
    const scenario = toScenario(data);
    expect(scenario.faults.healAtMs).toBe(30_000);
  });

  it('writes YAML that reads back to the same data, and names a directory that is not a run', () => {
    const run = runDir();
    expect(parse(exportRun(run))).toEqual(exportData(run));
    expect(() => exportData(join(dir, 'nothing'))).toThrow(RunDirError);
    expect(() => exportData(join(dir, 'nothing'))).toThrow(
      /not a chaos run directory: cannot read/,
    );
  });
});
