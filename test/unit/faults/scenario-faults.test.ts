// Goal: the `faults` part of scenario files is validated with errors that name the field and the
// problem, defaults are filled in as scenarios/README.md documents, and every fault scenario shipped
// in scenarios/ parses and opens with its goal and method. Method: small YAML texts through
// `parseScenario`, plain objects through `toScenario` (the entry point generated scenarios use).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario, toScenario, ScenarioError } from '../../../src/sim/scenario.ts';
import { SWARM_DEFAULTS, SWARM_KINDS, toFaultsData } from '../../../src/faults/plan.ts';
import { drawSwarm } from '../../../src/faults/swarm.ts';
import { Prng } from '../../../src/lib/prng.ts';

const base = `name: t
topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 2 }
workload:
  - at: 1m
    request: GET /v1/hosts
`;

function problem(faults: string): string {
  try {
    parseScenario(`${base}faults:\n${faults}`, 't.yaml');
  } catch (error) {
    if (error instanceof ScenarioError) return error.message;
    throw error;
  }
  return 'no error';
}

describe('faults in scenario files', () => {
  it('fills defaults and keeps explicit values', () => {
    const scenario = toScenario({
      name: 't',
      faults: {
        adapters: { failProbability: 0.1 },
        database: { abortProbability: 0.2 },
        locks: { expiryNoticeLossProbability: 1 },
        bus: { dropProbability: 0.5 },
        swarm: { kinds: ['crash', 'bus', 'crash'] },
        healAt: '2m',
      },
    });
    expect(scenario.faults.adapters).toEqual({
      failProbability: 0.1,
      timeoutProbability: 0,
      timeoutMs: 10_000,
      slowProbability: 0,
      slowMsMax: 1000,
      lostReplyProbability: 0,
    });
    expect(scenario.faults.database?.slowMsMax).toBe(100);
    expect(scenario.faults.locks?.expiryNoticeDelayMsMax).toBe(5000);
    expect(scenario.faults.bus?.reorderProbability).toBe(0);
    expect(scenario.faults.swarm).toEqual({
      kinds: ['crash', 'bus'],
      kindProbability: 0.5,
      eventsMax: 3,
      rateMax: 0.2,
    });
    expect(scenario.faults.healAtMs).toBe(120_000);
    expect(
      toScenario({ name: 't', faults: { swarm: {}, healAt: '1m' } }).faults.swarm?.kinds,
    ).toEqual(SWARM_KINDS);
  });

  it('accepts every fault kind on its kind of target', () => {
    const scenario = parseScenario(
      `${base}faults:
  schedule:
    - { at: 1s, kind: crash, target: agent-compute-1, restartAfter: 2s }
    - { at: 2s, kind: pause, target: api, for: 3s }
    - { at: 3s, kind: pause-holder, target: mainloop-2, point: write, for: 20s }
    - { at: 4s, kind: bus-disconnect, target: background, for: 5s }
    - { at: 5s, kind: session-expire, target: mainloop-1 }
    - { at: 6s, kind: host-crash, target: storage-1, for: 10s }
    - { at: 7s, kind: host-hang, target: compute-1, for: 1s }
    - { at: 8s, kind: host-isolate, target: compute-1, for: 40s }
    - { at: 9s, kind: db-disconnect, target: agent-storage-1, for: 4s }
`,
      't.yaml',
    );
    expect(scenario.faults.schedule.map((f) => f.kind)).toEqual([
      'crash',
      'pause',
      'pause-holder',
      'bus-disconnect',
      'session-expire',
      'host-crash',
      'host-hang',
      'host-isolate',
      'db-disconnect',
    ]);
    expect(scenario.faults.schedule[2]?.point).toBe('write');
    // The heal defaults to the end of the last fault (host-isolate: 8 s + 40 s).
    expect(scenario.faults.healAtMs).toBe(60_000);
  });

  it('names the field and the problem', () => {
    expect(problem('  schedule: [{ at: 1s, kind: crsh, target: api }]')).toMatch(
      /t\.yaml:\d+: faults\.schedule\[0\]\.kind: must be one of .* \(did you mean 'crash'\?\)/,
    );
    expect(problem('  schedule: [{ at: 1s, kind: pause, target: api, restartAfter: 1s }]')).toMatch(
      /faults\.schedule\[0\]\.restartAfter: applies only to kind crash/,
    );
    expect(problem('  schedule: [{ at: 1s, kind: crash, target: api, for: 1s }]')).toMatch(
      /faults\.schedule\[0\]\.for: does not apply to kind crash/,
    );
    expect(problem('  schedule: [{ at: 1s, kind: host-hang, target: compute-1 }]')).toMatch(
      /faults\.schedule\[0\]\.for: is required for kind host-hang/,
    );
    expect(problem('  schedule: [{ at: 1s, kind: host-isolate, target: compute-1 }]')).toMatch(
      /faults\.schedule\[0\]\.for: is required for kind host-isolate/,
    );
    expect(
      problem('  schedule: [{ at: 1s, kind: pause, target: api, point: write, for: 1s }]'),
    ).toMatch(/faults\.schedule\[0\]\.point: applies only to kind pause-holder/);
    expect(problem('  schedule: [{ at: 1s, kind: pause-holder, target: api, for: 1s }]')).toMatch(
      /faults\.schedule\[0\]\.target: names no main loop of this topology; choose from mainloop-1, mainloop-2/,
    );
    expect(
      problem('  schedule: [{ at: 1s, kind: host-crash, target: compte-1, for: 1s }]'),
    ).toMatch(/names no host of this topology \(did you mean 'compute-1'\?\)/);
    expect(problem('  healAt: 10s\n  schedule: [{ at: 10s, kind: crash, target: api }]')).toMatch(
      /faults\.schedule\[0\]\.at: is 10000 ms, not before faults\.healAt/,
    );
    expect(
      problem(
        '  healAt: 10s\n  schedule: [{ at: 5s, kind: host-hang, target: compute-1, for: 6s }]',
      ),
    ).toMatch(/faults\.schedule\[0\]\.for: makes the hang end at 11000 ms, after faults\.healAt/);
    expect(problem('  adapters: { lostReplyProbability: 2 }')).toMatch(
      /faults\.adapters\.lostReplyProbability: is a probability and must be at most 1/,
    );
    expect(problem('  database: { abortProbabilty: 0.1 }')).toMatch(/abortProbability/);
    expect(problem('  swarm: { kinds: [crash, dsk] }')).toMatch(
      /faults\.swarm\.kinds\[1\]: must be one of/,
    );
  });

  it('needs a safety phase for swarm mode', () => {
    expect(() => toScenario({ name: 't', faults: { swarm: {} } })).toThrow(/faults\.healAt|healAt/);
  });
});

describe('plans as scenario data', () => {
  it('round-trips a swarm draw through toScenario as an explicit plan', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { plan } = drawSwarm(
        { ...SWARM_DEFAULTS, kindProbability: 0.8 },
        {
          processes: ['api', 'mainloop-1', 'mainloop-2', 'background', 'agent-compute-1'],
          mainLoops: ['mainloop-1', 'mainloop-2'],
          hosts: ['compute-1', 'storage-1'],
        },
        120_000,
        new Prng(seed).fork('faults-swarm'),
      );
      const scenario = toScenario({
        name: 'shrunk',
        topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 2 },
        faults: toFaultsData(plan),
      });
      const { swarm, ...explicit } = scenario.faults;
      expect(swarm).toBeUndefined();
      expect(explicit).toEqual(plan);
    }
  });
});

describe('fault scenarios in scenarios/', () => {
  const dir = new URL('../../../scenarios/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.startsWith('faults-') && f.endsWith('.yaml'));

  it('has several, each parsing and opening with its goal and method', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      // The editor's schema line comes first, then the goal.
      expect(text.replace(/^# yaml-language-server: .*\n/, '').startsWith('# Goal:'), file).toBe(
        true,
      );
      expect(text, file).toMatch(/^# Method:/m);
      const scenario = parseScenario(text, file);
      expect(scenario.name).toBe(file.replace(/\.yaml$/, ''));
      expect(scenario.expect.verdict).toBe('ok');
    }
  });
});
