// Goal: chaos experiment files are validated like scenarios — the workload by the same code, faults
// in the scenario vocabulary — and a fault the staging deployment cannot suffer for real, or a
// target it does not have, is a clear error naming the field, never silently dropped. A storm
// compiles to explicit faults drawn from the seed: the same seed gives the same faults, inside
// the window, on the named targets. Every shipped experiment is valid against the example staging
// file.
// Method: experiments parsed from text against a fixed set of targets, and the files under
// experiments/ against staging/staging.example.yaml.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExperimentError, parseExperiment, targetsOf } from '../../../src/chaos/experiment.ts';
import { parseStagingConfig } from '../../../src/staging/config.ts';

const TARGETS = {
  processes: [
    'api',
    'mainloop-1',
    'mainloop-2',
    'background',
    'agent-compute-1',
    'agent-storage-1',
  ],
  hosts: ['compute-1', 'storage-1'],
};

const BASE = [
  'name: t',
  'accounts: [alice]',
  'workload:',
  '  - at: 1s',
  '    request: POST /v1/virtualmachines',
  '    body: { name: web, imageId: img-00000001, vcpus: 1, memoryMb: 256 }',
];

function parse(lines: readonly string[], seed?: number) {
  return parseExperiment([...BASE, ...lines].join('\n'), 'e.yaml', TARGETS, seed);
}

function problem(lines: readonly string[]): string {
  try {
    parse(lines);
  } catch (error) {
    expect(error).toBeInstanceOf(ExperimentError);
    return (error as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('chaos experiments', () => {
  it('takes crash, pause and host-crash faults and heals after the last one by default', () => {
    const e = parse([
      'faults:',
      '  schedule:',
      '    - { at: 2s, kind: crash, target: mainloop-1, restartAfter: 1s }',
      '    - { at: 3s, kind: pause, target: background, for: 4s }',
      '    - { at: 5s, kind: host-crash, target: compute-1, for: 10s }',
    ]);
    expect(e.schedule.map((f) => [f.atMs, f.kind, f.target])).toEqual([
      [2000, 'crash', 'mainloop-1'],
      [3000, 'pause', 'background'],
      [5000, 'host-crash', 'compute-1'],
    ]);
    expect(e.healAtMs).toBe(15_001);
    expect(e.accounts).toEqual(['alice']);
    expect(e.settleWithinMs).toBe(300_000);
  });

  it('refuses a fault with no real counterpart, naming the field and the kinds it takes', () => {
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 2s, kind: host-isolate, target: compute-1, for: 5s }',
      ]),
    ).toMatch(
      /e\.yaml:\d+: faults\.schedule\[0\]\.kind: host-isolate has no real counterpart .* crash, pause, pause-holder, host-crash/,
    );
  });

  it('takes session-expire on main loops only, at an instant', () => {
    const e = parse([
      'faults:',
      '  schedule:',
      '    - { at: 2s, kind: session-expire, target: mainloop-2 }',
    ]);
    expect(e.schedule.map((f) => [f.atMs, f.kind, f.target])).toEqual([
      [2000, 'session-expire', 'mainloop-2'],
    ]);
    expect(
      problem(['faults:', '  schedule:', '    - { at: 2s, kind: session-expire, target: api }']),
    ).toMatch(/target.*main loop/);
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 2s, kind: session-expire, target: mainloop-1, for: 1s }',
      ]),
    ).toMatch(/for: does not apply to kind session-expire/);
  });

  it('takes bus-disconnect on a process, for a while', () => {
    const e = parse([
      'faults:',
      '  schedule:',
      '    - { at: 2s, kind: bus-disconnect, target: agent-compute-1, for: 4s }',
    ]);
    expect(e.schedule.map((f) => [f.atMs, f.kind, f.target, f.forMs])).toEqual([
      [2000, 'bus-disconnect', 'agent-compute-1', 4000],
    ]);
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 2s, kind: bus-disconnect, target: compute-1, for: 4s }',
      ]),
    ).toMatch(/target/);
  });

  it('takes pause-holder on main loops only, with its point (default acquire)', () => {
    const e = parse([
      'faults:',
      '  schedule:',
      '    - { at: 2s, kind: pause-holder, target: mainloop-2, point: write, for: 20s }',
      '    - { at: 3s, kind: pause-holder, target: mainloop-1, for: 20s }',
    ]);
    expect(e.schedule.map((f) => [f.kind, f.target, f.point])).toEqual([
      ['pause-holder', 'mainloop-2', 'write'],
      ['pause-holder', 'mainloop-1', 'acquire'],
    ]);
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 2s, kind: pause-holder, target: api, for: 5s }',
      ]),
    ).toMatch(/target: names no main loop of the staging deployment/);
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 2s, kind: crash, target: api, point: write }',
      ]),
    ).toMatch(/\.point: applies only to kind pause-holder/);
  });

  it('refuses targets the deployment does not have, with a suggestion', () => {
    expect(
      problem(['faults:', '  schedule:', '    - { at: 2s, kind: crash, target: mainloop-3 }']),
    ).toMatch(/faults\.schedule\[0\]\.target: names no process .*did you mean 'mainloop-1'/);
    expect(
      problem(['faults:', '  schedule:', '    - { at: 2s, kind: host-crash, target: compute-2 }']),
    ).toMatch(/names no host of the staging deployment/);
  });

  it('refuses fields that do not apply, and faults after the heal', () => {
    expect(
      problem(['faults:', '  schedule:', '    - { at: 2s, kind: crash, target: api, for: 1s }']),
    ).toMatch(/\.for: does not apply to kind crash/);
    expect(
      problem(['faults:', '  schedule:', '    - { at: 2s, kind: pause, target: api }']),
    ).toMatch(/\.for: is required for kind pause/);
    expect(
      problem([
        'faults:',
        '  schedule:',
        '    - { at: 20s, kind: crash, target: api }',
        '  healAt: 10s',
      ]),
    ).toMatch(/faults\.healAt: is 10000 ms, not after every fault/);
  });

  it('validates the workload with the scenario rules', () => {
    expect(
      problem(['  - at: 2s', '    request: POST /v1/virtualmachines/{nothing}?action=stop']),
    ).toMatch(/workload\[1\]/);
  });

  it('compiles a storm from the seed: same seed, same faults; inside the window, on its targets', () => {
    const storm = [
      'faults:',
      '  storm: { kind: crash, targets: [api, mainloop-2], from: 5s, until: 65s, every: 1s, restartAfter: 2s }',
    ];
    const a = parse(storm, 7);
    const b = parse(storm, 7);
    const c = parse(storm, 8);
    expect(a.schedule).toEqual(b.schedule);
    expect(a.schedule).not.toEqual(c.schedule);
    // About one a second for a minute.
    expect(a.schedule.length).toBeGreaterThan(35);
    expect(a.schedule.length).toBeLessThan(90);
    for (const f of a.schedule) {
      expect(f.atMs).toBeGreaterThanOrEqual(5_000);
      expect(f.atMs).toBeLessThan(65_000);
      expect(['api', 'mainloop-2']).toContain(f.target);
      expect(f).toMatchObject({ kind: 'crash', restartAfterMs: 2_000, forMs: undefined });
    }
    expect(new Set(a.schedule.map((f) => f.target)).size).toBe(2);
    expect(problem(['faults:', '  storm: { targets: [api, nope], until: 5s, every: 1s }'])).toMatch(
      /faults\.storm\.targets\[1\]: names no process/,
    );
    expect(
      problem(['faults:', '  storm: { kind: pause, until: 5s, every: 1s, restartAfter: 1s }']),
    ).toMatch(/faults\.storm\.restartAfter: applies to crash storms/);
  });

  it('ships experiments that are valid against the example staging file', () => {
    const config = parseStagingConfig(
      readFileSync('staging/staging.example.yaml', 'utf8'),
      'staging/staging.example.yaml',
    );
    const targets = targetsOf(config);
    const files = readdirSync('experiments').filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const text = readFileSync(`experiments/${file}`, 'utf8');
      expect(text, file).toMatch(/^# Goal: /m);
      expect(text, file).toMatch(/^# Method: /m);
      const e = parseExperiment(text, file, targets);
      expect(e.name, file).toBe(file.replace(/\.yaml$/, ''));
    }
  });
});
