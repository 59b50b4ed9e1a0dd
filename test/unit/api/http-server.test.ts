// Goal: the node:http adapter is a faithful, thin shell around the API — absolute URLs from the
// Host header (or the public URL), lower-case headers, raw bodies, the handler's status, headers
// and body unchanged, and an oversized body answered by the API's own 413. Method: start the
// server on an ephemeral loopback port in front of createApi and talk to it with fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../../src/adapters/http-server.ts';
import { UnavailableError } from '../../../src/ports/errors.ts';
import { basic, createWorld, type World } from './harness.ts';

let w: World;
let server: HttpServer;
let proxied: HttpServer;

beforeAll(async () => {
  w = await createWorld({ limits: { maxBodyBytes: 2000 } });
  server = await startHttpServer({ handle: (r) => w.api.handle(r), maxBodyBytes: 2000 });
  proxied = await startHttpServer({
    handle: (r) => w.api.handle(r),
    publicUrl: 'https://cloud.example.com/',
  });
});

afterAll(async () => {
  await server.close();
  await proxied.close();
});

describe('http server adapter', () => {
  it('serves the API with absolute links built from the Host header', async () => {
    const auth = basic(w.admin.accessKey, w.admin.secretKey);
    const r = await fetch(`${server.url}/v1`, { headers: { Authorization: auth } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-api-schemas')).toBe(`${server.url}/v1/schemas`);
    const body = (await r.json()) as { links: { self: string } };
    expect(body.links.self).toBe(`${server.url}/v1`);
    const behindProxy = await fetch(`${proxied.url}/v1`, { headers: { Authorization: auth } });
    expect(((await behindProxy.json()) as { links: { self: string } }).links.self).toBe(
      'https://cloud.example.com/v1',
    );
  });

  it("passes bodies and methods through, and returns the handler's status and headers", async () => {
    const auth = basic(w.admin.accessKey, w.admin.secretKey);
    const created = await fetch(`${server.url}/v1/volumes`, {
      method: 'POST',
      headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=http&sizeGb=3',
    });
    expect(created.status).toBe(202);
    const vol = (await created.json()) as { id: string; sizeGb: number };
    expect(vol.sizeGb).toBe(3);
    expect(created.headers.get('location')).toBe(`${server.url}/v1/volumes/${vol.id}`);
    const unauth = await fetch(`${server.url}/v1/volumes`);
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('www-authenticate')).toContain('Basic');
  });

  it('lets the API answer 413 for an oversized body and closes the connection', async () => {
    const r = await fetch(`${server.url}/v1/volumes`, {
      method: 'POST',
      headers: {
        Authorization: basic(w.admin.accessKey, w.admin.secretKey),
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ name: 'x'.repeat(100_000) }),
    });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { code: string }).code).toBe('RequestTooLarge');
  });
});

/** Waits until `condition` holds (the test's own timeout bounds the wait). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('what the server holds at once', () => {
  /** A server whose handler answers only when `open()` is called. */
  async function gated(options: Partial<Parameters<typeof startHttpServer>[0]>) {
    let gate: () => void = () => {};
    let opened = new Promise<void>((resolve) => (gate = resolve));
    const entered: string[] = [];
    const s = await startHttpServer({
      ...options,
      handle: async (r) => {
        entered.push(r.url);
        await opened;
        return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
      },
    });
    return {
      s,
      entered,
      open: () => {
        gate();
        opened = new Promise<void>((resolve) => (gate = resolve));
      },
    };
  }

  it('refuses requests beyond the in-flight bound with 503 and Retry-After, and frees each slot when answered', async () => {
    const { s, entered, open } = await gated({ maxInFlight: 2 });
    try {
      const first = [fetch(`${s.url}/a`), fetch(`${s.url}/b`)];
      await until(() => entered.length >= 2);
      const third = await fetch(`${s.url}/c`);
      expect(third.status).toBe(503);
      expect(third.headers.get('retry-after')).toBe('1');
      expect(((await third.json()) as { code: string }).code).toBe('ServiceUnavailable');
      open();
      expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
      const again = fetch(`${s.url}/d`);
      await until(() => entered.length >= 3);
      open();
      expect((await again).status).toBe(200);
    } finally {
      open();
      await s.close();
    }
  });

  it('bounds the requests pipelined on one connection (429)', async () => {
    const { s, entered, open } = await gated({ maxInFlightPerConnection: 1 });
    try {
      const { connect } = await import('node:net');
      const socket = connect(s.port, '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
      socket.write(request('/one') + request('/two'));
      await until(() => entered.length >= 1);
      // Responses on a connection go out in order: the refusal follows the first answer.
      await new Promise((r) => setTimeout(r, 50));
      expect(entered).toEqual(['http://x/one']);
      open();
      await until(() => text.includes('TooManyRequests'));
      expect(text.indexOf('200 OK')).toBeLessThan(text.indexOf('429 Too Many Requests'));
      expect(entered).toEqual(['http://x/one']);
      socket.destroy();
    } finally {
      open();
      await s.close();
    }
  });

  it(
    'refuses a body that would pass the buffered bytes bound (503), and lets the others through',
    { timeout: 5000 },
    async () => {
      const { s, entered, open } = await gated({ maxBufferedBytes: 40_000, maxBodyBytes: 100_000 });
      try {
        const body = 'x'.repeat(15_000);
        const first = fetch(`${s.url}/a`, { method: 'POST', body });
        await until(() => entered.length >= 1);
        const second = await fetch(`${s.url}/b`, { method: 'POST', body });
        expect(second.status).toBe(503);
        expect(second.headers.get('retry-after')).toBe('1');
        open();
        expect((await first).status).toBe(200);
        // The first body's bytes were given back with its answer.
        const third = fetch(`${s.url}/c`, { method: 'POST', body });
        await until(() => entered.length >= 2);
        open();
        expect((await third).status).toBe(200);
      } finally {
        open();
        await s.close();
      }
    },
  );
});

describe('access log and health', () => {
  it('logs one line per request: method, path, status, milliseconds and the account', async () => {
    const lines: string[] = [];
    const logged = await startHttpServer({
      handle: (r) => w.api.handle(r),
      accessLog: (line) => lines.push(line),
    });
    try {
      const auth = basic(w.admin.accessKey, w.admin.secretKey);
      await (
        await fetch(`${logged.url}/v1/volumes?limit=2`, { headers: { Authorization: auth } })
      ).text();
      await (await fetch(`${logged.url}/v1/volumes`)).text();
      await (await fetch(`${logged.url}/v1/%0a%0d\x7f`)).text();
      await until(() => lines.length >= 3);
      expect(lines[0]).toMatch(
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\dT\\S+Z GET /v1/volumes\\?limit=2 200 \\d+\\.\\dms ${w.admin.accountId}$`,
        ),
      );
      expect(lines[1]).toMatch(/ GET \/v1\/volumes 401 \d+\.\dms -$/);
      expect(lines.every((l) => !/[\n\r]/.test(l))).toBe(true);
    } finally {
      await logged.close();
    }
  });

  it('answers /healthz without credentials while the database answers, 503 when it does not', async () => {
    const ok = await fetch(`${server.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ type: 'health', status: 'ok' });
    expect((await fetch(`${server.url}/healthz`, { method: 'POST', body: '' })).status).toBe(405);
    const down = await createWorld();
    Object.assign(down.store, {
      get: () => Promise.reject(new UnavailableError('store.get', 'the database is down')),
    });
    const r = await down.api.handle({
      method: 'GET',
      url: 'http://x/healthz',
      headers: {},
      body: '',
    });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(JSON.parse(r.body)).toMatchObject({ type: 'health', status: 'unavailable' });
  });
});
