// Goal: the workload generators and waitFor steps are validated like the rest of a scenario —
// each new field checked, with the file, the line, the field and the problem, unknown keys with a
// hint — and compiled to absolute times; the benchmark scenarios parse. Method: small YAML texts
// through parseScenario, one per error message; the files under scenarios/bench.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/sim/scenario.ts';
import { expectRefused } from '../support/scenario-errors.ts';

const head = 'name: t\nworkload:\n';
const repeat = (fields: string) =>
  `${head}  - repeat: ${fields}\n    request: POST /v1/virtualmachines\n`;
const arrivals = (fields: string, rest = '    request: GET /v1\n') =>
  `${head}  - arrivals: ${fields}\n${rest}`;
const mix = (ops: string) =>
  arrivals('{ poisson: { ratePerMinute: 10 }, for: 1m }', `    mix:\n${ops}`);

describe('workload generators: validation', () => {
  it.each([
    [repeat('{ count: 0, every: 1s }'), 'workload[0].repeat.count', 3, /at least 1/],
    [repeat('{ count: 1000001, every: 1s }'), 'workload[0].repeat.count', 3, /at most 1000000/],
    [repeat('{ count: 2.5, every: 1s }'), 'workload[0].repeat.count', 3, /whole number/],
    [repeat('{ count: 2, every: 0ms }'), 'workload[0].repeat.every', 3, /at least 1 ms/],
    [repeat('{ count: 2 }'), 'workload[0].repeat.every', 3, /is required/],
    [repeat('{ cout: 2, every: 1s }'), 'workload[0].repeat.cout', 3, /did you mean 'count'/],
    [
      `${head}  - repet: { count: 2, every: 1s }\n    request: GET /v1\n`,
      'workload[0].repet',
      3,
      /did you mean 'repeat'/,
    ],
    [
      `${head}  - repeat: { count: 2, every: 1s }\n    request: POST /v1/volumes\n    save: vol\n`,
      'workload[0].save',
      5,
      /must contain \{i\} in a generator/,
    ],
    [
      `${head}  - request: GET /v1/virtualmachines?name=x{i}\n`,
      'workload[0].request',
      3,
      /\{i\} is defined only in repeat and arrivals/,
    ],
    [
      arrivals('{ poisson: { ratePerMinute: 0 }, for: 1m }'),
      'workload[0].arrivals.poisson.ratePerMinute',
      3,
      /more than 0/,
    ],
    [
      arrivals('{ poisson: { ratePerMinute: -2 }, for: 1m }'),
      'workload[0].arrivals.poisson.ratePerMinute',
      3,
      /more than 0/,
    ],
    [
      arrivals('{ poisson: { ratePerMinute: 100000 }, for: 11m }'),
      'workload[0].arrivals.poisson.ratePerMinute',
      3,
      /about 1100000 calls .* more than 1000000/,
    ],
    [arrivals('{ poisson: { ratePerMinute: 1 } }'), 'workload[0].arrivals.for', 3, /is required/],
    [
      arrivals('{ poisson: { ratePerMinute: 1 }, for: 0.5ms }'),
      'workload[0].arrivals.for',
      3,
      /at least 1 ms/,
    ],
    [
      arrivals('{ poison: { ratePerMinute: 1 }, for: 1m }'),
      'workload[0].arrivals.poison',
      3,
      /did you mean 'poisson'/,
    ],
    [
      arrivals('{ poisson: { ratePerMinute: 1 }, for: 1m }', ''),
      'workload[0].request',
      3,
      /or give 'mix'/,
    ],
    [
      arrivals(
        '{ poisson: { ratePerMinute: 1 }, for: 1m }',
        '    request: GET /v1\n    mix:\n      - { weight: 1, request: GET /v1 }\n',
      ),
      'workload[0].mix',
      5,
      /either 'request' or 'mix'/,
    ],
    [
      arrivals(
        '{ poisson: { ratePerMinute: 1 }, for: 1m }',
        '    pool: vms\n    mix:\n      - { weight: 1, request: GET /v1 }\n',
      ),
      'workload[0].pool',
      4,
      /belongs to each operation of 'mix'/,
    ],
    [
      mix('      - { weight: 0, request: GET /v1 }\n'),
      'workload[0].mix[0].weight',
      5,
      /at least 1/,
    ],
    [
      mix('      - { weight: 1.5, request: GET /v1 }\n'),
      'workload[0].mix[0].weight',
      5,
      /whole number/,
    ],
    [mix('      - { request: GET /v1 }\n'), 'workload[0].mix[0].weight', 5, /is required/],
    [
      mix('      - { weigth: 1, request: GET /v1 }\n'),
      'workload[0].mix[0].weigth',
      5,
      /did you mean 'weight'/,
    ],
    [
      arrivals('{ poisson: { ratePerMinute: 10 }, for: 1m }', '    mix: []\n'),
      'workload[0].mix',
      4,
      /at least 1 items/,
    ],
    [
      mix("      - { weight: 1, request: 'DELETE /v1/virtualmachines/{vms}', pool: vms }\n"),
      'workload[0].mix[0].pool',
      5,
      /pool 'vms' is never filled/,
    ],
    [
      mix('      - { weight: 1, request: PUT /v1/virtualmachines/x, pool: vms }\n'),
      'workload[0].mix[0].pool',
      5,
      /only a POST creates/,
    ],
    [
      mix('      - { weight: 1, request: GET /v1, as: bob }\n'),
      'workload[0].mix[0].as',
      5,
      /names no account/,
    ],
    [
      `${head}  - { at: 1s, request: POST /v1/virtualmachines, save: web }\n  - request: GET /v1\n    waitFor: { resource: '{web}', stat: running }\n`,
      'workload[1].waitFor.stat',
      5,
      /did you mean 'state'/,
    ],
    [
      `${head}  - request: GET /v1\n    waitFor: { resource: '{web}', state: running }\n`,
      'workload[0].waitFor.resource',
      4,
      /uses \{web\} before any earlier step saved it/,
    ],
    [
      `${head}  - request: GET /v1\n    waitFor: { resource: web, state: running }\n`,
      'workload[0].waitFor.resource',
      4,
      /a saved id such as \{web\}/,
    ],
    [
      `${head}  - { at: 1s, request: POST /v1/virtualmachines, save: web }\n  - request: GET /v1\n    waitFor: { resource: '{web}', state: running, within: 0s }\n`,
      'workload[1].waitFor.within',
      5,
      /at least 1 ms/,
    ],
    [
      `${head}  - { at: 1s, repeat: { count: 30, every: 1s }, request: POST /v1/virtualmachines, save: 'vm{i}' }\n  - request: DELETE /v1/virtualmachines/{vm30}\n`,
      'workload[1].request',
      4,
      /uses \{vm30\} before/,
    ],
    [
      'name: t\ntopology:\n  compute: { count: 10001 }\n',
      'topology.compute.count',
      3,
      /at most 10000/,
    ],
    [
      'name: t\ntopology:\n  storage: { count: 1001 }\n',
      'topology.storage.count',
      3,
      /at most 1000/,
    ],
  ])('rejects %j at %s', (text, field, line, problem) => {
    expectRefused(text, field, line, problem);
  });
});

describe('workload generators: compiled', () => {
  it('sets absolute times; a generator runs beside later entries and ends the workload', () => {
    const s = parseScenario(
      `${head}  - { at: 1s, repeat: { count: 30, every: 1s }, request: POST /v1/virtualmachines, save: 'vm{i}', pool: vms }\n` +
        `  - { after: 2s, request: 'DELETE /v1/virtualmachines/{vm29}' }\n` +
        `  - after: 1s\n    arrivals: { poisson: { ratePerMinute: 6 }, for: 2m }\n    mix:\n      - { weight: 3, request: 'POST /v1/virtualmachines/{vms}?action=stop', pool: vms }\n      - { weight: 1, request: 'DELETE /v1/virtualmachines/{vms}', pool: vms }\n`,
      'f.yaml',
    );
    const [first, second, third] = s.workload;
    expect(first).toMatchObject({ kind: 'repeat', atMs: 1000, count: 30, everyMs: 1000 });
    expect(first?.kind === 'repeat' && first.call.pool).toEqual({ name: 'vms', use: 'add' });
    expect(second).toMatchObject({ kind: 'call', atMs: 3000, method: 'DELETE' });
    expect(third).toMatchObject({ kind: 'arrivals', atMs: 4000, forMs: 120_000, ratePerMinute: 6 });
    expect(
      third?.kind === 'arrivals' && third.mix.map((m) => [m.weight, m.call.pool?.use]),
    ).toEqual([
      [3, 'pick'],
      [1, 'take'],
    ]);
    // The workload ends when the arrivals stop (4 s + 2 m), after the repeat (1 s + 29 s).
    expect(s.faults.healAtMs).toBe(124_000);
  });

  it.each(['scenarios/bench/scale-1k.yaml', 'scenarios/bench/scale-10k.yaml'])(
    '%s parses and validates',
    (file) => {
      const s = parseScenario(readFileSync(file, 'utf8'), file);
      const creates = s.workload.find((e) => e.kind === 'repeat');
      expect(creates?.kind === 'repeat' && creates.count).toBe(s.topology.compute.count * 10);
      // An hour of simulated time at least: the load, the faults and the settling fit in it.
      expect(s.budgets.maxSimTimeMs).toBeGreaterThanOrEqual(3_600_000);
    },
  );
});
