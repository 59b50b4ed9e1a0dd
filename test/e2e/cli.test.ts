// Goal: the `cloudbed` command behaves as the README says — verdict lines, reproducible hashes,
// trace files that replay, determinism checks, and bad input answered with one line and exit 2.
// Method: run bin/cloudbed.js as a child process, as a user would, and check stdout, stderr and
// the exit code. Scenarios here are small so the whole file stays quick.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-cli-'));

function cloudbed(...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/cloudbed.js', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function scenarioFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const SMALL = `# Goal: a tiny cloud that creates and starts one VM. Method: one step, no faults.
name: small
topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 1, accounts: [alice] }
workload:
  - at: 1s
    request: POST /v1/virtualmachines
    body: { name: vm-1, imageId: img-00000001, memoryMb: 512 }
    save: vm
`;

const VERDICT_LINE =
  /^seed=(\d+) scenario=(\S+) verdict=(\w+) trace-hash=([0-9a-f]{16}) steps=(\d+) sim-time-ms=(\d+)$/m;

describe('cloudbed run', () => {
  const small = scenarioFile('small.yaml', SMALL);

  it('ends with the verdict line; the same seed gives the same hash, another seed another', () => {
    const a = cloudbed('run', small, '--seed', '7');
    const b = cloudbed('run', small, '--seed', '7');
    const c = cloudbed('run', small, '--seed', '8');
    for (const r of [a, b, c]) expect(r.code, r.stderr).toBe(0);
    const [, seedA, nameA, verdictA, hashA] = VERDICT_LINE.exec(
      a.stdout.trim().split('\n').at(-1)!,
    )!;
    expect([seedA, nameA, verdictA]).toEqual(['7', 'small', 'ok']);
    expect(VERDICT_LINE.exec(b.stdout)![4]).toBe(hashA);
    expect(VERDICT_LINE.exec(c.stdout)![4]).not.toBe(hashA);
  });

  it('gives the same hash on the memory store and the SQL store on pg-mem', () => {
    const memory = cloudbed('run', small, '--store', 'memory');
    const pgmem = cloudbed('run', small, '--store', 'pgmem');
    expect(memory.code, memory.stderr).toBe(0);
    expect(VERDICT_LINE.exec(pgmem.stdout)![4]).toBe(VERDICT_LINE.exec(memory.stdout)![4]);
  });

  it('writes a trace that replays to the same hash, and reports a tampered trace', () => {
    const trace = join(dir, 'run.jsonl');
    expect(cloudbed('run', small, '--trace', trace).code).toBe(0);
    const replay = cloudbed('replay', trace);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stderr).toContain('replay matches');

    // Change one recorded entry: the replay must name the first divergent entry.
    const lines = readFileSync(trace, 'utf8').split('\n');
    const index = lines.findIndex((l) => l.includes('"client.response"'));
    lines[index] = lines[index]!.replace('"status":202', '"status":201');
    const end = JSON.parse(lines.at(-2)!);
    end.end.traceHash = '0000000000000000';
    lines[lines.length - 2] = JSON.stringify(end);
    const tampered = join(dir, 'tampered.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    const bad = cloudbed('replay', tampered);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain(`first divergent entry #${index - 1}`);
  });

  it('checks determinism seed by seed', () => {
    const result = cloudbed('check-determinism', small, '--seeds', '2');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('2 seeds of small are deterministic');
  });
});

describe('bad input', () => {
  const cases: [string, string | null, RegExp][] = [
    ['a missing file', null, /missing\.yaml: no such file/],
    ['invalid YAML', 'name: x\n  bad: [\n', /invalid\.yaml:1: invalid YAML/],
    [
      'a misspelled field',
      'name: x\ntopolgy: {}\n',
      /misspelled\.yaml:2: topolgy: unknown field \(did you mean 'topology'\?\)/,
    ],
    [
      'a negative count',
      'name: x\ntopology:\n  compute:\n    count: -1\n',
      /negative\.yaml:4: topology\.compute\.count: must be at least 0, got -1/,
    ],
    [
      'a probability above 1',
      'name: x\nfaults:\n  bus:\n    dropProbability: 1.5\n',
      /probability\.yaml:4: faults\.bus\.dropProbability: .*at most 1, got 1\.5/,
    ],
    [
      'a step using an unsaved id',
      'name: x\nworkload:\n  - request: DELETE /v1/volumes/{nope}\n',
      /unsaved\.yaml:3: workload\[0\]\.request: uses \{nope\}/,
    ],
  ];
  const names = ['missing', 'invalid', 'misspelled', 'negative', 'probability', 'unsaved'];
  cases.forEach(([what, text, message], i) => {
    it(`answers ${what} with one line and exit code 2`, () => {
      const file =
        text === null ? join(dir, 'missing.yaml') : scenarioFile(`${names[i]}.yaml`, text);
      const result = cloudbed('run', file);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stdout).toBe('');
    });
  });

  it('answers bad options with one line and exit code 2', () => {
    for (const args of [
      ['run'],
      ['run', 'a.yaml', '--seed', 'x'],
      ['run', 'a.yaml', '--store', 'mysql'],
      ['run', 'a.yaml', '--bogus'],
      ['serve', '--cors-origin', 'https://console.example.com/app'],
      ['serve', '--cors-origin', 'console.example.com'],
      ['nope'],
    ]) {
      const result = cloudbed(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('suggests the command or option meant, prints its version, and names a busy port', async () => {
    const command = cloudbed('rnu', 'x.yaml');
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("did you mean 'run'?");
    const option = cloudbed('run', 'scenarios/quickstart.yaml', '--sede', '3');
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('did you mean --seed?');
    const version = cloudbed('--version');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^cloudbed \d+\.\d+\.\d+\n$/);
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as { port: number }).port;
      const serve = cloudbed('serve', '--port', String(port));
      expect(serve.code).toBe(2);
      expect(serve.stderr.trim().split('\n')).toHaveLength(1);
      expect(serve.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    } finally {
      busy.close();
    }
  });

  it('prints help for every command', () => {
    for (const command of ['run', 'replay', 'check-determinism', 'serve']) {
      const result = cloudbed(command, '--help');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: cloudbed ${command}`);
    }
    expect(cloudbed('--help').stdout).toContain('Commands:');
  });
});
