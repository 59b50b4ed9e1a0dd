// Goal: scenario files are validated field by field, with defaults filled in and every error naming
// the file, the line, the field and the problem. Method: parse small YAML texts, good and bad.
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/sim/scenario.ts';
import { expectRefused, scenarioError as error } from '../support/scenario-errors.ts';

describe('parseScenario', () => {
  it('fills in defaults', () => {
    const s = parseScenario('name: tiny\n', 'f.yaml');
    expect(s.topology.compute.count).toBe(3);
    expect(s.topology.mainLoops).toBe(2);
    expect(s.topology.accounts).toEqual(['user']);
    expect(s.workload).toEqual([]);
    expect(s.expect.verdict).toBe('ok');
    expect(s.faults.healAtMs).toBe(0);
  });

  it('turns durations and relative steps into absolute times', () => {
    const s = parseScenario(
      'name: t\nworkload:\n  - { at: 1.5s, request: GET /v1 }\n  - { after: 2m, request: GET /v1 }\n  - { after: 250ms, request: GET /v1 }\n',
      'f.yaml',
    );
    expect(s.workload.map((w) => w.atMs)).toEqual([1500, 121_500, 121_750]);
    expect(s.faults.healAtMs).toBe(121_750);
  });

  it.each([
    ['name: Bad Name\n', 'name', 1, /lowercase letters/],
    [
      'name: t\nworkload:\n  - { at: 5s, request: GET /v1 }\n  - { at: 1s, request: GET /v1 }\n',
      'workload[1].at',
      4,
      /goes back in time/,
    ],
    [
      'name: t\nworkload:\n  - { at: 1s, after: 1s, request: GET /v1 }\n',
      'workload[0].after',
      3,
      /either 'at' or 'after'/,
    ],
    ['name: t\nworkload:\n  - { request: PATCH /v1 }\n', 'workload[0].request', 3, /METHOD one of/],
    [
      'name: t\nworkload:\n  - { request: GET /v1, as: bob }\n',
      'workload[0].as',
      3,
      /names no account/,
    ],
    [
      'name: t\nfaults:\n  schedule:\n    - { at: 1s, kind: crash, target: mainlop-1 }\n',
      'faults.schedule[0].target',
      4,
      /did you mean 'mainloop-1'/,
    ],
    [
      'name: t\nfaults:\n  schedule:\n    - { at: 1s, kind: pause, target: api }\n',
      'faults.schedule[0].for',
      4,
      /required for kind pause/,
    ],
    ['name: t\nbudgets:\n  maxSteps: 0\n', 'budgets.maxSteps', 3, /at least 1/],
    [
      'name: t\nexpect:\n  verdict: fine\n',
      'expect.verdict',
      3,
      /one of ok, correctness, liveness, crash/,
    ],
    ['name: t\nseed: -3\n', 'seed', 2, /at least 0/],
    ['name: t\nstore: mysql\n', 'store', 2, /memory, pgmem/],
  ])('rejects %j at %s', (text, field, line, problem) => {
    expectRefused(text, field, line, problem);
  });

  it('rejects an empty file and YAML that is not a mapping', () => {
    expect(error('').problem).toMatch(/empty/);
    expect(error('- a\n- b\n').problem).toMatch(/must be a mapping/);
  });
});
