// Goal: a staging file is validated like a scenario file — the shipped example parses with the
// documented defaults, every kind of mistake is one line naming the file, the line and the field
// (with a spelling hint where one helps), and the `staging` and `process` commands turn bad input
// into exit code 2 before touching any service.
// Method: parseStagingConfig on the example and on small broken variants; then bin/cloudbed.js as
// a child process on broken files and arguments. Needs no service, so it runs everywhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  busPrefix,
  hostDomainPrefix,
  nodeDatasetPrefix,
  parseStagingConfig,
  schemaName,
  StagingConfigError,
  zookeeperRoot,
} from '../../../src/staging/config.ts';

const EXAMPLE = 'staging/staging.example.yaml';
const dir = mkdtempSync(join(tmpdir(), 'cloudbed-staging-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MINIMAL = [
  'prefix: t1',
  'hosts:',
  '  - { name: c1, kind: compute, vcpus: 4, memoryMb: 4096 }',
  '  - { name: s1, kind: storage, poolSizeGb: 100 }',
  '',
].join('\n');

function errorOf(text: string): StagingConfigError {
  try {
    parseStagingConfig(text, 'f.yaml');
  } catch (error) {
    if (error instanceof StagingConfigError) return error;
    throw error;
  }
  throw new Error('expected a StagingConfigError');
}

describe('staging file', () => {
  it('parses the shipped example with its documented values', () => {
    const config = parseStagingConfig(readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
    expect(config.prefix).toBe('dev');
    expect(config.file).toBe(resolve(EXAMPLE));
    expect(config.stateDir).toBe(resolve('.cloudbed/staging', 'dev'));
    expect(config.libvirt).toEqual({
      uri: 'qemu:///system',
      domainType: 'auto',
      memoryDivisor: 16,
      domainMemoryMinMb: 32,
    });
    expect(config.zfs).toEqual({ pool: 'cloudbed', sizeDivisor: 1024 });
    expect(config.agents).toEqual({ inventoryIntervalMs: 10_000, shutdownTimeoutMs: 5_000 });
    expect(config.hosts.map((h) => `${h.name}:${h.kind}`)).toEqual([
      'compute-1:compute',
      'compute-2:compute',
      'storage-1:storage',
    ]);
  });

  it('fills defaults and derives every name from the prefix', () => {
    const config = parseStagingConfig(MINIMAL, 'f.yaml');
    expect(config.database.url).toBe('postgres://postgres@127.0.0.1:5432/test');
    expect(config.api.port).toBe(8480);
    expect(schemaName(config)).toBe('cloudbed_t1');
    expect(busPrefix(config)).toBe('t1.');
    expect(zookeeperRoot(config)).toBe('/cloudbed-t1');
    expect(hostDomainPrefix(config, 'c1')).toBe('t1-c1-');
    expect(nodeDatasetPrefix(config, 's1')).toBe('t1-s1-');
    expect(config.mainLoop).toEqual({
      sweepIntervalMs: 5_000,
      instances: 2,
      concurrency: 8,
      restart: 'always',
    });
    expect(config.supervisor).toEqual({ restartsPerMinuteMax: 5, backoffMs: 1_000 });
    expect([
      config.api.restart,
      config.background.restart,
      ...config.hosts.map((h) => h.restart),
    ]).toEqual(['always', 'always', 'always', 'always']);
  });

  it('takes a restart policy per process over the supervisor default', () => {
    const config = parseStagingConfig(
      [
        'prefix: t1',
        'supervisor: { restart: never, restartsPerMinute: 3, backoff: 2s }',
        'mainLoop: { instances: 3, concurrency: 16, restart: always }',
        'hosts:',
        '  - { name: c1, kind: compute, vcpus: 4, memoryMb: 4096, restart: always }',
        '  - { name: s1, kind: storage, poolSizeGb: 100 }',
        '',
      ].join('\n'),
      'f.yaml',
    );
    expect(config.supervisor).toEqual({ restartsPerMinuteMax: 3, backoffMs: 2_000 });
    expect(config.mainLoop).toMatchObject({ instances: 3, concurrency: 16, restart: 'always' });
    expect(config.api.restart).toBe('never');
    expect(config.background.restart).toBe('never');
    expect(config.hosts.map((h) => h.restart)).toEqual(['always', 'never']);
  });

  it.each([
    ['', 'f.yaml: the file is empty'],
    ['prefix: [', 'invalid YAML'],
    [MINIMAL.replace('prefix: t1', 'prefix: T-1'), 'f.yaml:1: prefix: must be lowercase letters'],
    [MINIMAL.replace('prefix: t1\n', ''), 'prefix: is required'],
    [`${MINIMAL}hots: []\n`, "hots: unknown field (did you mean 'hosts'?)"],
    [MINIMAL.replace(', memoryMb: 4096', ''), 'hosts[0].memoryMb: is required for a compute host'],
    [MINIMAL.replace('poolSizeGb: 100', 'vcpus: 2'), 'hosts[1].poolSizeGb: is required'],
    [MINIMAL.replace('name: s1', 'name: c1'), "hosts[1].name: 'c1' is taken"],
    [
      MINIMAL.replace('name: s1', 'name: c1-x'),
      "hosts[0].name: 'c1-' starts the name of host 'c1-x'",
    ],
    [
      MINIMAL.replace(/ {2}- \{ name: s1.*\n/, ''),
      'hosts: needs at least one host of kind storage',
    ],
    [`${MINIMAL}zfs: { sizeDivisor: 1000 }\n`, 'zfs.sizeDivisor: must be a power of two'],
    [`${MINIMAL}agents: { shutdownTimeout: soon }\n`, 'agents.shutdownTimeout: must be a duration'],
    [`${MINIMAL}redis: { url: 'http://x' }\n`, 'redis.url: must be a redis:// URL'],
    [`${MINIMAL}mainLoop: { instances: 0 }\n`, 'f.yaml:5: mainLoop.instances: must be at least 1'],
    [`${MINIMAL}api: { corsOrigins: [https://x.example/app] }\n`, 'api.corsOrigins[0]: must be'],
    [
      `${MINIMAL}mainLoop: { concurrency: 65 }\n`,
      'f.yaml:5: mainLoop.concurrency: must be at most 64',
    ],
    [
      `${MINIMAL}api: { restart: sometimes }\n`,
      'f.yaml:5: api.restart: must be one of always, never',
    ],
    [
      MINIMAL.replace('poolSizeGb: 100', 'poolSizeGb: 100, restart: no'),
      'f.yaml:4: hosts[1].restart: must be one of always, never',
    ],
    [
      `${MINIMAL}supervisor: { restartsPerMinute: 0 }\n`,
      'supervisor.restartsPerMinute: must be at least 1',
    ],
    [`${MINIMAL}supervisor: { restarts: 3 }\n`, 'supervisor.restarts: unknown field'],
  ])('rejects %j with one line: %s', (text, expected) => {
    const error = errorOf(text);
    expect(error.message).toContain(expected);
    expect(error.message.startsWith('f.yaml')).toBe(true);
    expect(error.message).not.toContain('\n');
  });

  it('names the line of the offending field', () => {
    expect(errorOf(MINIMAL.replace('vcpus: 4', 'vcpus: 0')).message).toMatch(
      /^f\.yaml:3: hosts\[0\]\.vcpus: must be at least 1/,
    );
  });
});

describe('staging and process commands on bad input', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/cloudbed.js', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('exit 2 with one line for a broken staging file, before any service is asked', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, MINIMAL.replace('kind: storage', 'kind: disk'));
    const result = run('staging', 'up', '--config', file);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/broken\.yaml:4: hosts\[1\]\.kind: must be one of compute, storage/),
    ]);
  });

  it('exit 2 for a missing file, an unknown subcommand, an unknown process or role', () => {
    const missing = run('staging', 'status', '--config', join(dir, 'nope.yaml'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no such file');
    expect(run('staging', 'sideways').status).toBe(2);
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, MINIMAL);
    const restart = run('staging', 'restart', 'agent-c9', '--config', file);
    expect(restart.status).toBe(2);
    expect(restart.stderr).toContain(
      'processes: api, mainloop-1, mainloop-2, background, agent-c1, agent-s1',
    );
    const instance = run('process', 'mainloop', '--config', file, '--instance', '3');
    expect(instance.status).toBe(2);
    expect(instance.stderr).toContain('--instance must be 1..2');
    expect(run('staging', 'down', '--no-restart', '--config', file).status).toBe(2);
    expect(run('process', 'janitor', '--config', file).status).toBe(2);
    const wrongHost = run('process', 'compute-agent', '--config', file, '--host', 's1');
    expect(wrongHost.status).toBe(2);
    expect(wrongHost.stderr).toContain("'s1' is no compute host");
  });
});
