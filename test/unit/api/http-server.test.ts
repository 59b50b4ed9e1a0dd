// Goal: the node:http adapter is a faithful, thin shell around the API — absolute URLs from the
// Host header (or the public URL), lower-case headers, raw bodies, the handler's status, headers
// and body unchanged, and an oversized body answered by the API's own 413. Method: start the
// server on an ephemeral loopback port in front of createApi and talk to it with fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../../src/adapters/http-server.ts';
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
