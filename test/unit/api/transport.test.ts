// Goal: the transport rules — form and multipart bodies for create and actions, 413/414/415, 405
// with Allow, HEAD, the HTML view for browsers (and `_format=json`), errors in the format asked
// for, 503 when a dependency is down, a logged 500 for bugs, and a lost change notice that is only
// logged. Method: createApi over the in-memory store, with stores and buses that fail on purpose.

import { describe, expect, it } from 'vitest';
import { UnavailableError } from '../../../src/ports/errors.ts';
import type { EventStore } from '../../../src/ports/event-store.ts';
import { createApi } from '../../../src/control/api/index.ts';
import { escapeHtml } from '../../../src/control/api/html.ts';
import { BASE, basic, createWorld } from './harness.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const BROWSER = {
  accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
  'user-agent': 'Mozilla/5.0 (X11)',
};

describe('bodies', () => {
  it('accepts URL-encoded forms for create, converting types and dropping empty inputs', async () => {
    const w = await createWorld();
    const r = await w.call('POST', '/v1/virtualmachines', {
      raw: 'name=web-2&imageId=img-00000003&vcpus=2&memoryMb=512&rootDiskGb=&startOnCreate=false&volumes=%5B%7B%22sizeGb%22%3A5%7D%5D',
      headers: FORM,
    });
    expect(r.status, r.body).toBe(202);
    expect(r.json).toMatchObject({
      name: 'web-2',
      vcpus: 2,
      memoryMb: 512,
      rootDiskGb: 40,
      desired: 'stopped',
    });
    const bad = await w.call('POST', '/v1/virtualmachines', {
      raw: 'name=x&imageId=img-00000001&vcpus=two',
      headers: FORM,
    });
    expect(bad.json).toMatchObject({ code: 'InvalidFormat', fieldName: 'vcpus' });
    const twice = await w.call('POST', '/v1/virtualmachines', {
      raw: 'name=x&name=y&imageId=img-00000001',
      headers: FORM,
    });
    expect(twice.json).toMatchObject({ code: 'InvalidFormat', fieldName: 'name' });
  });

  it('says when a JSON body came labelled as a form (curl -d), and writes nothing', async () => {
    const w = await createWorld();
    const n = (await w.events()).length;
    const r = await w.call('POST', '/v1/volumes', {
      raw: '{"name":"data","sizeGb":2}',
      headers: FORM,
    });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'InvalidBodyContent' });
    expect(r.json.message).toContain('JSON');
    expect(r.json.detail).toContain('Content-Type: application/json');
    expect((await w.events()).length).toBe(n);
    // A real form that happens to start with a brace is still a form.
    const form = await w.call('POST', '/v1/volumes', { raw: '{name=data&sizeGb=2', headers: FORM });
    expect(form.json?.message ?? '').not.toContain('is JSON');
  });

  it('accepts multipart/form-data for create and actions', async () => {
    const w = await createWorld();
    const boundary = '----cloudbed42';
    const part = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const vol = await w.call('POST', '/v1/volumes', {
      raw: new TextEncoder().encode(
        `${part('name', 'data')}${part('sizeGb', '7')}--${boundary}--\r\n`,
      ),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    expect(vol.status, vol.body).toBe(202);
    expect(vol.json).toMatchObject({ name: 'data', sizeGb: 7 });
    await w.settleVolume(vol.json.id);
    const grow = await w.call('POST', `/v1/volumes/${vol.json.id}?action=grow`, {
      raw: `${part('sizeGb', '9')}--${boundary}--`,
      headers: { 'content-type': `multipart/form-data; boundary="${boundary}"` },
    });
    expect(grow.status, grow.body).toBe(202);
    expect(grow.json.sizeGb).toBe(9);
    for (const raw of [
      `${part('sizeGb', '9')}`,
      `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nx\r\n--${boundary}--`,
      'garbage',
    ]) {
      const r = await w.call('POST', '/v1/volumes', {
        raw,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expect(r.json.code).toBe('InvalidBodyContent');
    }
    const noBoundary = await w.call('POST', '/v1/volumes', {
      raw: 'x',
      headers: { 'content-type': 'multipart/form-data' },
    });
    expect(noBoundary.json.code).toBe('InvalidBodyContent');
  });

  it('answers 422 for malformed JSON and invalid UTF-8, 415 for other media types, 413 and 414 for size', async () => {
    const w = await createWorld({ limits: { maxBodyBytes: 1000, maxUrlLength: 300 } });
    const n = (await w.events()).length;
    const json = { 'content-type': 'application/json' };
    expect(
      (await w.call('POST', '/v1/volumes', { raw: '{"sizeGb":', headers: json })).json.code,
    ).toBe('InvalidBodyContent');
    expect(
      (
        await w.call('POST', '/v1/volumes', {
          raw: new Uint8Array([0x7b, 0xff, 0x7d]),
          headers: json,
        })
      ).json.code,
    ).toBe('InvalidBodyContent');
    const xml = await w.call('POST', '/v1/volumes', {
      raw: '<volume/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.status).toBe(415);
    expect(xml.json.code).toBe('UnsupportedMediaType');
    const big = await w.call('POST', '/v1/volumes', {
      raw: `{"name":"${'x'.repeat(2000)}"}`,
      headers: json,
    });
    expect(big.status).toBe(413);
    const bigUtf8 = await w.call('POST', '/v1/volumes', {
      raw: `{"name":"${'é'.repeat(600)}"}`,
      headers: json,
    });
    expect(bigUtf8.status).toBe(413);
    const longUrl = await w.call('GET', `/v1/volumes?name=${'x'.repeat(400)}`);
    expect(longUrl.headers['x-api-schemas']).toBe(`${BASE}/v1/schemas`);
    expect(longUrl.status).toBe(414);
    expect(longUrl.json.type).toBe('error');
    expect((await w.events()).length).toBe(n);
  });
});

describe('methods', () => {
  it('405 MethodNotAllowed with Allow; HEAD answers headers only', async () => {
    const w = await createWorld();
    const put = await w.call('PUT', '/v1/volumes');
    expect(put.status).toBe(405);
    expect(put.json.code).toBe('MethodNotAllowed');
    expect(put.headers['allow']).toBe('GET, HEAD, POST');
    // Any method the URL does not take gets the same Allow: what the URL takes.
    for (const method of ['PATCH', 'TRACE', 'BREW'])
      expect((await w.call(method, '/v1/volumes')).headers['allow'], method).toBe(
        'GET, HEAD, POST',
      );
    expect((await w.call('POST', '/v1/schemas')).status).toBe(405);
    expect((await w.call('DELETE', '/v1')).status).toBe(405);
    const head = await w.call('HEAD', '/v1/volumes');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toContain('application/json');
    const vol = (await w.call('POST', '/v1/volumes', { body: { sizeGb: 1 } })).json;
    const post = await w.call('POST', `/v1/volumes/${vol.id}`);
    expect(post.status).toBe(405);
  });
});

describe('HTML for browsers', () => {
  it('renders resources with links, action forms, the embedded JSON and a curl example', async () => {
    const w = await createWorld();
    const vm = (
      await w.call('POST', '/v1/virtualmachines', {
        body: { name: 'web', imageId: 'img-00000001' },
      })
    ).json;
    await w.settleVm(vm.id, 'running');
    const r = await w.call('GET', `/v1/virtualmachines/${vm.id}`, { headers: BROWSER });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['x-api-schemas']).toBe(`${BASE}/v1/schemas`);
    expect(r.body).toContain(
      `<form method="post" action="${BASE}/v1/virtualmachines/${vm.id}?action=stop">`,
    );
    expect(r.body).toContain(`_method=DELETE`);
    expect(r.body).toContain(
      escapeHtml(
        `curl -u "$CLOUDBED_ACCESS_KEY:$CLOUDBED_SECRET_KEY" '${BASE}/v1/virtualmachines/${vm.id}'`,
      ),
    );
    expect(r.body).toContain(
      escapeHtml(
        `curl -u "$CLOUDBED_ACCESS_KEY:$CLOUDBED_SECRET_KEY" -X POST '${BASE}/v1/virtualmachines/${vm.id}?action=stop'`,
      ),
    );
    expect(r.body).toContain(
      escapeHtml(
        `curl -u "$CLOUDBED_ACCESS_KEY:$CLOUDBED_SECRET_KEY" -X DELETE '${BASE}/v1/virtualmachines/${vm.id}'`,
      ),
    );
    expect(r.body).toContain(`<a href="${BASE}/v1/images/img-00000001">`);
    const embedded = /<script type="application\/json" id="cloudbed-data">(.*)<\/script>/s.exec(
      r.body,
    )![1]!;
    expect(JSON.parse(embedded)).toMatchObject({ id: vm.id, state: 'running' });
    const json = await w.call('GET', `/v1/virtualmachines/${vm.id}?_format=json`, {
      headers: BROWSER,
    });
    expect(json.headers['content-type']).toContain('application/json');
    const curlLike = await w.call('GET', `/v1/virtualmachines/${vm.id}`, {
      headers: { accept: '*/*', 'user-agent': 'curl/8.5' },
    });
    expect(curlLike.headers['content-type']).toContain('application/json');
  });

  it('renders collections with create, filter, sort and pagination controls, escaping data', async () => {
    const w = await createWorld();
    await w.call('POST', '/v1/accounts', { body: { name: 'Tom & <Jerry>' } }); // refused: invalid chars
    await w.call('POST', '/v1/volumes', { body: { sizeGb: 1, name: 'a' } });
    await w.call('POST', '/v1/volumes', { body: { sizeGb: 1, name: 'b' } });
    const r = await w.call('GET', '/v1/volumes?limit=1', { headers: BROWSER });
    expect(r.body).toContain('create volume');
    expect(r.body).toContain('name="sizeGb"');
    expect(r.body).toContain('>next</a>');
    expect(r.body).toContain('sort by:');
    expect(r.body).toContain('<legend>filter</legend>');
    const err = await w.call('GET', '/v1/volumes?name=%3Cscript%3E&colour=%3Cb%3E', {
      headers: BROWSER,
    });
    expect(err.status).toBe(422);
    expect(err.headers['content-type']).toContain('text/html');
    expect(err.body).not.toContain('<b>');
    expect(err.body).toContain('InvalidFormat');
  });
});

describe('failures', () => {
  it('answers 503 when the store is unavailable, without a bug log', async () => {
    const w = await createWorld();
    const down: EventStore = {
      ...w.store,
      list: () => Promise.reject(new UnavailableError('postgres', 'connection refused')),
      get: () => Promise.reject(new UnavailableError('postgres', 'connection refused')),
    };
    const api = createApi({ runtime: w.runtime, store: down, bus: w.bus });
    const r = await api.handle({
      method: 'GET',
      url: `${BASE}/v1/volumes`,
      headers: { authorization: basic(w.admin.accessKey, w.admin.secretKey) },
      body: '',
    });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ type: 'error', code: 'ServiceUnavailable' });
    expect(w.runtime.logs.filter((l) => l.message.includes('bug'))).toHaveLength(0);
  });

  it('answers 500 ServerError for an unexpected exception and logs it as a bug', async () => {
    const w = await createWorld();
    const broken: EventStore = { ...w.store, list: () => Promise.reject(new TypeError('boom')) };
    const api = createApi({ runtime: w.runtime, store: broken, bus: w.bus });
    const r = await api.handle({
      method: 'GET',
      url: `${BASE}/v1/volumes`,
      headers: { authorization: basic(w.admin.accessKey, w.admin.secretKey) },
      body: '',
    });
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'ServerError' });
    expect(r.body).not.toContain('boom');
    expect(w.runtime.logs.some((l) => l.level === 'warn' && l.message.includes('bug'))).toBe(true);
  });

  it('commits and answers when the change notice cannot be published, logging it', async () => {
    const w = await createWorld();
    w.bus.failing = true;
    const r = await w.call('POST', '/v1/volumes', { body: { sizeGb: 1 } });
    expect(r.status).toBe(202);
    expect(await w.store.get(r.json.id)).not.toBeNull();
    expect(w.runtime.logs.some((l) => l.message.includes('change notice not published'))).toBe(
      true,
    );
  });

  it('retries a write that lost a race when no rev was given', async () => {
    const w = await createWorld();
    const vol = (await w.call('POST', '/v1/volumes', { body: { sizeGb: 1 } })).json;
    await w.settleVolume(vol.id);
    let raced = false;
    const racing: EventStore = {
      ...w.store,
      async append(batch) {
        if (!raced) {
          raced = true;
          // Another writer appends to the same stream just before this one.
          await w.append(vol.id, {
            type: 'volume.progress-reported',
            data: { message: 'x', progress: 1 },
          });
        }
        return w.store.append(batch);
      },
    };
    const api = createApi({ runtime: w.runtime, store: racing, bus: w.bus });
    const r = await api.handle({
      method: 'POST',
      url: `${BASE}/v1/volumes/${vol.id}?action=grow`,
      headers: {
        authorization: basic(w.admin.accessKey, w.admin.secretKey),
        'content-type': 'application/json',
      },
      body: '{"sizeGb":2}',
    });
    expect(r.status, r.body).toBe(202);
    expect(raced).toBe(true);
    expect(JSON.parse(r.body)).toMatchObject({ sizeGb: 2, state: 'growing' });
  });
});

describe('conditional requests', () => {
  it('answers 304 to If-None-Match with the current tag, and the resource once it changed', async () => {
    const w = await createWorld();
    const vol = (await w.call('POST', '/v1/volumes', { body: { name: 'd', sizeGb: 2 } })).json;
    const first = await w.call('GET', `/v1/volumes/${vol.id}`);
    const tag = first.headers['etag']!;
    expect(tag).toBe(`"${vol.rev}"`);
    const same = await w.call('GET', `/v1/volumes/${vol.id}`, {
      headers: { 'if-none-match': tag },
    });
    expect(same.status).toBe(304);
    expect(same.body).toBe('');
    expect(same.headers['etag']).toBe(tag);
    const weak = await w.call('GET', `/v1/volumes/${vol.id}`, {
      headers: { 'if-none-match': `"999", W/${tag}` },
    });
    expect(weak.status).toBe(304);
    await w.call('PUT', `/v1/volumes/${vol.id}`, { body: { name: 'renamed' } });
    const changed = await w.call('GET', `/v1/volumes/${vol.id}`, {
      headers: { 'if-none-match': tag },
    });
    expect(changed.status).toBe(200);
    expect(changed.json.name).toBe('renamed');
    // The HTML page is another representation, with its own tag.
    const page = await w.call('GET', `/v1/volumes/${vol.id}`, {
      headers: { ...BROWSER, 'if-none-match': changed.headers['etag']! },
    });
    expect(page.status).toBe(200);
    expect(page.headers['etag']).toBe(changed.headers['etag']!.replace(/"$/, '-html"'));
  });
});
