/**
 * Goal: the API is safe to open in a browser. A foreign page cannot make a logged-in browser change
 * anything (cross-site form posts, `?_method=` tricks); HTML pages run no script, cannot be framed
 * and post forms only to the API; JSON clients on allowed origins get CORS and preflights, others
 * do not; clients that are not browsers (no Origin, no Referer) are not affected.
 * Method: createApi over the in-memory store (test harness), requests with the headers a browser
 * would send, and a count of stored events to show that a refusal wrote nothing.
 */
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { HTML_STYLE } from '../../../src/control/api/html.ts';
import { BASE, createWorld, type World } from './harness.ts';

const EVIL = 'https://evil.example';
const CONSOLE = 'https://console.example';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const vmForm = 'name=web&imageId=img-00000001&vcpus=1&memoryMb=512';

let w: World;
const count = async () => (await w.events()).length;

beforeEach(async () => {
  w = await createWorld({ corsOrigins: [CONSOLE] });
});

describe('cross-site requests', () => {
  it('refuses a foreign page’s form post, by Origin, Referer or Sec-Fetch-Site, and writes nothing', async () => {
    const n = await count();
    for (const headers of [
      { ...FORM, origin: EVIL },
      { ...FORM, origin: 'null' },
      { ...FORM, referer: `${EVIL}/attack.html` },
      { ...FORM, 'sec-fetch-site': 'cross-site' },
    ]) {
      const r = await w.call('POST', '/v1/virtualmachines', { raw: vmForm, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.json).toMatchObject({ code: 'PermissionDenied' });
    }
    // Even with valid credentials, and for every state-changing method.
    for (const method of ['PUT', 'DELETE'])
      expect(
        (await w.call(method, '/v1/volumes/vol-00000001', { headers: { origin: EVIL } })).status,
      ).toBe(403);
    expect(await count()).toBe(n);
  });

  it('lets the API’s own pages, the allowed origins and non-browser clients write', async () => {
    for (const headers of [{ ...FORM, origin: BASE }, { ...FORM, referer: `${BASE}/v1` }, FORM]) {
      const r = await w.call('POST', '/v1/virtualmachines', { raw: vmForm, headers });
      expect(r.status, `${JSON.stringify(headers)}: ${r.body}`).toBe(202);
    }
    const fromConsole = await w.call('POST', '/v1/virtualmachines', {
      body: { name: 'api', imageId: 'img-00000001', vcpus: 1, memoryMb: 512 },
      headers: { origin: CONSOLE },
    });
    expect(fromConsole.status).toBe(202);
    // Reads from anywhere are answered (a foreign page cannot read them without CORS).
    expect((await w.call('GET', '/v1/virtualmachines', { headers: { origin: EVIL } })).status).toBe(
      200,
    );
  });

  it('honours ?_method= only on posts from the API’s own pages', async () => {
    const vm = (
      await w.call('POST', '/v1/virtualmachines', {
        body: { name: 'm', imageId: 'img-00000001', vcpus: 1, memoryMb: 512 },
      })
    ).json;
    const n = await count();
    const bare = await w.call('POST', `/v1/virtualmachines/${vm.id}?_method=DELETE`);
    expect(bare.status).toBe(422);
    expect(bare.json).toMatchObject({ code: 'InvalidOption', fieldName: '_method' });
    const allowed = await w.call('POST', `/v1/virtualmachines/${vm.id}?_method=DELETE`, {
      headers: { origin: CONSOLE },
    });
    expect(allowed.status).toBe(422);
    expect(await count()).toBe(n);
    const own = await w.call('POST', `/v1/virtualmachines/${vm.id}?_method=DELETE`, {
      headers: { origin: BASE },
    });
    expect(own.status).toBe(202);
  });
});

describe('response headers', () => {
  const browser = { accept: 'text/html,*/*', 'user-agent': 'Mozilla/5.0' };

  it('HTML pages forbid scripts and framing, and allow exactly their own stylesheet', async () => {
    const r = await w.call('GET', '/v1/virtualmachines', { headers: browser });
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    const csp = r.headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const style = /<style>([^<]*)<\/style>/.exec(r.body)?.[1];
    expect(style).toBe(HTML_STYLE);
    const hash = createHash('sha256').update(style!).digest('base64');
    expect(csp).toContain(`style-src 'sha256-${hash}'`);
    expect(r.body).not.toMatch(/<script(?![^>]*type="application\/json")/);
  });

  it('every response is nosniff; JSON responses carry no page policy', async () => {
    for (const path of ['/v1', '/v1/nothing', '/v1/virtualmachines']) {
      const r = await w.call('GET', path);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await w.call('GET', '/v1')).headers['content-security-policy']).toBeUndefined();
  });
});

describe('CORS', () => {
  it('answers an allowed origin with credentials, and nobody else', async () => {
    const allowed = await w.call('GET', '/v1', { headers: { origin: CONSOLE } });
    expect(allowed.headers['access-control-allow-origin']).toBe(CONSOLE);
    expect(allowed.headers['access-control-allow-credentials']).toBe('true');
    expect(allowed.headers['vary']).toBe('Origin');
    const foreign = await w.call('GET', '/v1', { headers: { origin: EVIL } });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers preflights without credentials, granting only allowed origins', async () => {
    const preflight = {
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    };
    const ok = await w.call('OPTIONS', '/v1/virtualmachines', {
      as: null,
      headers: { ...preflight, origin: CONSOLE },
    });
    expect(ok.status).toBe(204);
    expect(ok.body).toBe('');
    expect(ok.headers['access-control-allow-origin']).toBe(CONSOLE);
    expect(ok.headers['access-control-allow-methods']).toContain('POST');
    expect(ok.headers['access-control-allow-headers']).toContain('authorization');
    const refused = await w.call('OPTIONS', '/v1/virtualmachines', {
      as: null,
      headers: { ...preflight, origin: EVIL },
    });
    expect(refused.status).toBe(204);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    // A plain OPTIONS says what the API allows.
    const plain = await w.call('OPTIONS', '/v1', { as: null });
    expect(plain.status).toBe(204);
    expect(plain.headers['allow']).toBe('GET, HEAD, POST, PUT, DELETE, OPTIONS');
  });
});
