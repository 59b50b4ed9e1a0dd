// Goal: the parts of `cloudbed staging up`, `status` and the supervisor that decide what to say and
// what to start, without services: a taken API port is found before anything starts and named in
// one line; the admin secret is printed only by the `up` that generated it; only the main loops
// need ZooKeeper (so `up` with ZooKeeper down still starts the rest), there are as many main loops
// as configured, and /proc matching tells `--instance 1` from `--instance 12`; status shows
// restarts, the policy and a supervisor that gave up.
// Method: a staging config parsed from text with a temporary state directory; a real listening
// socket on 127.0.0.1 for the port check; the pure formatting functions.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { curlCommand } from '../../../src/control/api/html.ts';
import { parseStagingConfig } from '../../../src/staging/config.ts';
import {
  adminFile,
  adminLines,
  apiPortProblem,
  statusLine,
} from '../../../src/staging/deployment.ts';
import { isOurs, processSpecs, supervisorSpec } from '../../../src/staging/supervisor.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-staging-deployment-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configOn(port: number, extra = '') {
  return parseStagingConfig(
    [
      'prefix: t1',
      `stateDir: ${dir}`,
      `api: { port: ${port} }`,
      extra,
      'hosts:',
      '  - { name: c1, kind: compute, vcpus: 4, memoryMb: 4096 }',
      '  - { name: s1, kind: storage, poolSizeGb: 100, restart: never }',
      '',
    ].join('\n'),
    join(dir, 'staging.yaml'),
  );
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

describe('staging up', () => {
  it('names a taken API port in one line, and says nothing of a free one', async () => {
    const { server, port } = await listen();
    try {
      const problem = await apiPortProblem(configOn(port));
      expect(problem).toBe(
        `port ${port} on 127.0.0.1 is taken by another process; free it or set api.port in ${join(dir, 'staging.yaml')}`,
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await apiPortProblem(configOn(port))).toBeNull();
  });

  it('prints the admin secret only when it generated it', () => {
    const config = configOn(8480);
    const keys = { accessKey: 'admin-1', secretKey: 'sekrit-value' };
    const generated = adminLines(config, { ...keys, source: 'generated' }).join('\n');
    expect(generated).toContain('sekrit-value');
    expect(generated).toContain(adminFile(config));
    const kept = adminLines(config, { ...keys, source: 'state' }).join('\n');
    expect(kept).not.toContain('sekrit-value');
    expect(kept).toContain(`the secret key is in ${adminFile(config)}`);
    expect(adminLines(config, { ...keys, source: 'environment' }).join('\n')).not.toContain(
      'sekrit-value',
    );
    // Every variant sets the two variables the curl hints (and the HTML pages' hints) read.
    const hint = curlCommand('GET', 'http://x/v1');
    for (const source of ['generated', 'state', 'environment'] as const) {
      const lines = adminLines(config, { ...keys, source });
      expect(
        lines.some((l) => /^export CLOUDBED_ACCESS_KEY=\S+ CLOUDBED_SECRET_KEY=/.test(l)),
      ).toBe(true);
      expect(lines.at(-1)).toMatch(/^try: curl -u "\$CLOUDBED_ACCESS_KEY:\$CLOUDBED_SECRET_KEY" /);
      expect(hint.startsWith('curl -u "$CLOUDBED_ACCESS_KEY:$CLOUDBED_SECRET_KEY"')).toBe(true);
    }
  });

  it('has the configured main loops, the only processes that need ZooKeeper', () => {
    const specs = processSpecs(configOn(8480, 'mainLoop: { instances: 3 }'));
    expect(specs.map((s) => s.name)).toEqual([
      'api',
      'mainloop-1',
      'mainloop-2',
      'mainloop-3',
      'background',
      'agent-c1',
      'agent-s1',
    ]);
    expect(specs.filter((s) => s.needs.includes('zookeeper')).map((s) => s.name)).toEqual([
      'mainloop-1',
      'mainloop-2',
      'mainloop-3',
    ]);
    expect(specs.find((s) => s.name === 'mainloop-2')?.args.slice(-2)).toEqual(['--instance', '2']);
    expect(specs.find((s) => s.name === 'agent-s1')).toMatchObject({
      restart: 'never',
      needs: ['postgres', 'redis', 'zfs'],
    });
    expect(processSpecs(configOn(8480)).filter((s) => s.name.startsWith('mainloop'))).toHaveLength(
      2,
    );
    expect(supervisorSpec(configOn(8480)).args).toEqual([
      'staging',
      'supervise',
      '--config',
      join(dir, 'staging.yaml'),
    ]);
  });
});

describe('process matching', () => {
  it('tells a process by its exact arguments: --instance 1 is not --instance 12', async () => {
    const specs = processSpecs(configOn(8480, 'mainLoop: { instances: 12 }'));
    const twelve = specs.find((s) => s.name === 'mainloop-12')!;
    const one = specs.find((s) => s.name === 'mainloop-1')!;
    // A stand-in whose command line ends with mainloop-12's arguments.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', ...twelve.args], {
      stdio: 'ignore',
    });
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      expect(isOurs(child.pid!, twelve)).toBe(true);
      expect(isOurs(child.pid!, one)).toBe(false);
      expect(isOurs(child.pid!, specs[0]!)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('staging status', () => {
  const [api, , , , , storage] = processSpecs(configOn(8480));

  it('shows restarts, the policy, and a process the supervisor gave up on', () => {
    expect(statusLine({ spec: api!, pid: 42, state: 'running' }, undefined, true)).toBe(
      `  ${'api'.padEnd(20)} running  pid 42 restarts 0`,
    );
    expect(
      statusLine(
        { spec: api!, pid: 43, state: 'dead' },
        { restarts: 5, lastRestartAtMs: 1, gaveUp: true },
        true,
      ),
    ).toMatch(/dead +pid 43 restarts 5 — GAVE UP: died too often/);
    expect(statusLine({ spec: storage!, pid: 44, state: 'dead' }, undefined, true)).toMatch(
      /restarts 0 \(restart: never\)$/,
    );
    expect(statusLine({ spec: api!, pid: 45, state: 'dead' }, undefined, false)).toMatch(
      /\(no supervisor: not restarted\)$/,
    );
  });
});
