// Goal: the API behaves the same over the SQL event store (on pg-mem) as over the in-memory one:
// the same write path (one batch, change notices), listing with filters and pagination, rev
// conflicts and refusals that write nothing. Method: one short end-to-end flow on pg-mem.

import { describe, expect, it } from 'vitest';
import { createSqlEventStore } from '../../../src/adapters/sql-event-store.ts';
import { createPgMemDriver } from '../../../src/sim/pgmem-driver.ts';
import { projector } from '../../../src/model/projector.ts';
import { createWorld } from './harness.ts';

describe('API over the SQL store', () => {
  it('creates, lists, acts, conflicts and refuses like over the memory store', async () => {
    const store = await createSqlEventStore({
      driver: createPgMemDriver(),
      schema: 'cloudbed',
      projector,
    });
    const w = await createWorld({ store });
    try {
      const alice = await w.newUser('alice');
      const vm = await w.call('POST', '/v1/virtualmachines', {
        as: alice,
        body: { name: 'web', imageId: 'img-00000001', volumes: [{ sizeGb: 3 }] },
      });
      expect(vm.status, vm.body).toBe(202);
      await w.settleVm(vm.json.id, 'running');
      const volumes = await w.call('GET', `/v1/volumes?limit=1&sort=sizeGb`, { as: alice });
      expect(volumes.json.data[0].sizeGb).toBe(3);
      expect(volumes.json.pagination).toMatchObject({ partial: true, total: 2 });
      const next = await w.call('GET', volumes.json.pagination.next, { as: alice });
      expect(next.json.data[0].sizeGb).toBe(40);
      const current = await w.call('GET', `/v1/virtualmachines/${vm.json.id}`, { as: alice });
      const n = (await w.events()).length;
      const stale = await w.call('POST', `/v1/virtualmachines/${vm.json.id}?action=stop`, {
        as: alice,
        body: { rev: current.json.rev - 1 },
      });
      expect(stale.status).toBe(409);
      const bad = await w.call('POST', '/v1/volumes', { as: alice, body: { sizeGb: 0 } });
      expect(bad.json.code).toBe('MinLimitExceeded');
      expect((await w.events()).length).toBe(n);
      const stop = await w.call('POST', `/v1/virtualmachines/${vm.json.id}?action=stop`, {
        as: alice,
        body: { rev: current.json.rev },
      });
      expect(stop.status).toBe(202);
      expect(stop.json.state).toBe('stopping');
    } finally {
      await store.close();
    }
  });
});
