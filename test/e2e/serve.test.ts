// Goal: the playground works as the README promises — `cloudbed serve` on a real HTTP port, Basic
// auth with the keys from the environment, and the everyday flow over plain HTTP.
// Method: start `bin/cloudbed.js serve --port 0` as a child process, read its URL from stdout,
// then drive the API with fetch exactly as curl would: create a VM, wait until it runs, follow its
// `volumes` link to the root volume, stop it with `?action=stop`, delete it and see it and its
// volumes removed; check /v1/schemas describes every type with fields, actions and lifecycle.
// Waiting is bounded by attempts, never asserted on wall-clock time.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ACCESS = 'e2e-admin';
const SECRET = 'e2e-secret-value';
const AUTH = `Basic ${Buffer.from(`${ACCESS}:${SECRET}`).toString('base64')}`;

let child: ChildProcess;
let base = '';

async function api(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, any> }> {
  const url = path.startsWith('http') ? path : `${base}${path}`;
  const response = await fetch(url, {
    method,
    headers: {
      authorization: AUTH,
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

async function waitFor(
  path: string,
  done: (r: Record<string, any>) => boolean,
  attempts = 300,
): Promise<Record<string, any>> {
  let last: Record<string, any> = {};
  for (let i = 0; i < attempts; i++) {
    last = (await api('GET', path)).json;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gave up waiting on ${path}: last state ${String(last['state'])}`);
}

beforeAll(async () => {
  child = spawn(process.execPath, ['bin/cloudbed.js', 'serve', '--port', '0'], {
    env: { ...process.env, CLOUDBED_ADMIN_ACCESS_KEY: ACCESS, CLOUDBED_ADMIN_SECRET_KEY: SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  // Keep reading stdout for the child's whole life: a closed pipe would kill it on its next write.
  base = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const match = /(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
      if (match !== null) resolve(match[1]!);
    });
    child.once('exit', (code) =>
      reject(new Error(`cloudbed serve exited with ${String(code)}: ${out}`)),
    );
  });
  expect(base).not.toBe('');
});

afterAll(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

describe('cloudbed serve', () => {
  it('rejects requests without or with wrong credentials', async () => {
    expect((await fetch(`${base}/v1/virtualmachines`)).status).toBe(401);
    const wrong = await fetch(`${base}/v1/virtualmachines`, {
      headers: { authorization: `Basic ${Buffer.from(`${ACCESS}:nope`).toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('creates a VM that reaches running, stops it, deletes it and its volumes', async () => {
    const created = await api('POST', '/v1/virtualmachines', {
      name: 'web-1',
      imageId: 'img-00000001',
      memoryMb: 512,
    });
    expect(created.status).toBe(202);
    const id = created.json['id'] as string;
    const running = await waitFor(
      `/v1/virtualmachines/${id}`,
      (r) => r['state'] === 'running' && r['transitioning'] === 'no',
    );
    expect(Object.keys(running['actions'])).toContain('stop');

    const volumes = await api('GET', running['links']['volumes'] as string);
    expect(volumes.status).toBe(200);
    const root = (volumes.json['data'] as Record<string, any>[]).filter((v) => v['root'] === true);
    expect(root).toHaveLength(1);
    expect(root[0]!['id']).toBe(running['rootVolumeId']);

    const stop = await api('POST', `/v1/virtualmachines/${id}?action=stop`);
    expect(stop.status).toBeLessThan(300);
    await waitFor(
      `/v1/virtualmachines/${id}`,
      (r) => r['state'] === 'stopped' && r['transitioning'] === 'no',
    );

    const deleted = await fetch(`${base}/v1/virtualmachines/${id}`, {
      method: 'DELETE',
      headers: { authorization: AUTH },
    });
    expect(deleted.status).toBeLessThan(300);
    await waitFor(`/v1/virtualmachines/${id}`, (r) => r['state'] === 'removed');
    await waitFor(`/v1/volumes/${root[0]!['id'] as string}`, (r) => r['state'] === 'removed');
  });

  it('describes every type, its fields, actions and lifecycle in /v1/schemas', async () => {
    const schemas = await api('GET', '/v1/schemas');
    expect(schemas.status).toBe(200);
    const byId = new Map(
      (schemas.json['data'] as Record<string, any>[]).map((s) => [s['id'] as string, s]),
    );
    for (const type of [
      'account',
      'apiKey',
      'host',
      'image',
      'virtualMachine',
      'volume',
      'snapshot',
    ]) {
      const schema = byId.get(type);
      expect(schema, type).toBeDefined();
      expect(Object.keys(schema!['resourceFields']).length).toBeGreaterThan(0);
    }
    const vm = byId.get('virtualMachine')!;
    expect(Object.keys(vm['resourceActions'])).toEqual(
      expect.arrayContaining(['start', 'stop', 'restart']),
    );
    expect(vm['lifecycle']).toBeDefined();
  });
});
