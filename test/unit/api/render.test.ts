/**
 * Goal: a resource's representation is worked out once per row version and base URL, and a new
 * version is always rendered anew. Method: render the rows the store holds before and after a
 * change, and compare by identity and by content.
 */
import { describe, expect, it } from 'vitest';
import { renderResource } from '../../../src/control/api/render.ts';
import { createWorld } from './harness.ts';

describe('renderResource', () => {
  it('renders a row version once per base, and a new version anew', async () => {
    const w = await createWorld();
    const vol = (await w.call('POST', '/v1/volumes', { body: { name: 'a', sizeGb: 2 } })).json;
    const before = (await w.store.get(vol.id))!.data;
    const first = renderResource('http://x', 'volume', before);
    expect(renderResource('http://x', 'volume', before)).toBe(first);
    expect(renderResource('http://y', 'volume', before)).not.toBe(first);
    expect(renderResource('http://y', 'volume', before)['links']).toMatchObject({
      self: `http://y/v1/volumes/${vol.id}`,
    });
    await w.call('PUT', `/v1/volumes/${vol.id}`, { body: { name: 'b' } });
    const after = (await w.store.get(vol.id))!.data;
    expect(after).not.toBe(before);
    expect(renderResource('http://x', 'volume', after)['name']).toBe('b');
    // The old version's representation is untouched.
    expect(first['name']).toBe('a');
    // Extra members (a new key's secret) are never kept.
    const extra = renderResource('http://x', 'volume', after, { secretValue: 's' });
    expect(extra).not.toBe(renderResource('http://x', 'volume', after));
    expect(renderResource('http://x', 'volume', after)['secretValue']).toBeUndefined();
  });
});
