/**
 * Goal: `/v1/openapi.json` is a valid OpenAPI 3.1 document that says what the API does — generated
 * from the same schemas as `/v1/schemas`, so every collection, operation and field rule there is
 * here too, and what the API answers fits what the document says.
 * Method: validate the document with an OpenAPI validator (@seriousme/openapi-schema-validator,
 * the OpenAPI Initiative's JSON Schemas); compare its paths and component fields with the schema
 * registry; check real answers of the API against the document's response schemas by hand (type,
 * required members, enum values).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { allSchemas, representedFields } from '../../../src/model/gdapi-schema.ts';
import { createWorld } from './harness.ts';

describe('/v1/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const w = await createWorld();
    const r = await w.call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    const result = await new Validator().validate(r.json);
    expect(result.errors ?? [], JSON.stringify(result.errors ?? []).slice(0, 2000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(r.json.openapi).toBe('3.1.0');
  });

  it('describes every collection, operation and represented field of the schemas', async () => {
    const w = await createWorld();
    const doc = (await w.call('GET', '/v1/openapi.json')).json;
    for (const schema of allSchemas()) {
      if (schema.collection === undefined) continue;
      const collection = doc.paths[`/v1/${schema.collection}`];
      expect(collection?.get, schema.id).toBeDefined();
      expect(collection?.post !== undefined, schema.id).toBe(
        schema.collectionMethods.includes('POST'),
      );
      const resource = doc.paths[`/v1/${schema.collection}/{id}`];
      expect(resource?.put !== undefined, schema.id).toBe(schema.resourceMethods.includes('PUT'));
      expect(resource?.delete !== undefined, schema.id).toBe(
        schema.resourceMethods.includes('DELETE'),
      );
      expect(Object.keys(doc.components.schemas[schema.id].properties).sort()).toEqual(
        [...representedFields(schema.id), 'links', 'actions'].sort(),
      );
      for (const link of Object.keys(schema.collectionLinks))
        expect(doc.paths[`/v1/${schema.collection}/{id}/${link}`], link).toBeDefined();
    }
    // Field rules carry over: bounds and enums of a VM's create body.
    const create = doc.components.schemas['virtualMachineCreate'];
    expect(create.properties.vcpus).toMatchObject({ type: 'integer', minimum: 1, maximum: 8 });
    expect(create.required).toContain('name');
  });

  it('fits what the API answers', async () => {
    const w = await createWorld();
    const doc = (await w.call('GET', '/v1/openapi.json')).json;
    const vm = await w.call('POST', '/v1/virtualmachines', {
      body: { name: 'web', imageId: 'img-00000001', vcpus: 1, memoryMb: 512 },
    });
    expect(Object.keys(doc.paths['/v1/virtualmachines'].post.responses)).toContain(
      String(vm.status),
    );
    const spec = doc.components.schemas['virtualMachine'];
    for (const name of spec.required) expect(vm.json, name).toHaveProperty(name);
    for (const [name, value] of Object.entries(vm.json as Record<string, unknown>)) {
      const field = spec.properties[name];
      expect(field, `${name} is not in the document`).toBeDefined();
      const types = ([] as string[]).concat(field.type ?? []);
      const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
      const allowed = types.map((t) => (t === 'integer' ? 'number' : t));
      if (allowed.length > 0)
        expect(allowed, `${name}: ${JSON.stringify(value)}`).toContain(actual);
      if (Array.isArray(field.enum)) expect(field.enum, name).toContain(value);
    }
    const missing = await w.call('GET', '/v1/virtualmachines/vm-0badc0de');
    for (const name of doc.components.schemas['error'].required)
      expect(missing.json, name).toHaveProperty(name);
  });
});
