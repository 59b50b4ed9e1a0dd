// Goal: scenario.schema.json is the scenario format as the validator sees it, and stays so — the
// committed file is what `npm run schema` generates now, editors find it from every shipped
// scenario, and the schema accepts what the validator accepts and refuses what it refuses.
// Method: compare the file with `scenarioSchemaText()`; read each shipped file's first line; check
// shipped and broken scenario data against the schema with a small checker of the keywords the
// shapes emit (type, properties, required, additionalProperties, enum, bounds, pattern, items,
// anyOf), beside `toScenario`.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { scenarioJsonSchema, scenarioSchemaText, toScenario } from '../../src/sim/scenario.ts';
import type { JsonSchema } from '../../src/lib/shape.ts';

const SCHEMA_FILE = 'scenario.schema.json';

/** Shipped scenario files: scenarios/, its regressions and benchmarks. */
function shippedScenarios(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.yaml')) out.push(path);
    }
  };
  walk('scenarios');
  return out.sort();
}

/** Problems of `value` against `schema`: the subset of JSON Schema the shapes emit. */
function problems(schema: JsonSchema, value: unknown, at = '$'): string[] {
  const out: string[] = [];
  const anyOf = schema['anyOf'] as JsonSchema[] | undefined;
  if (anyOf !== undefined && anyOf.every((branch) => problems(branch, value, at).length > 0))
    out.push(`${at}: matches no alternative`);
  const type = schema['type'];
  const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
  if (type === 'object' && !isObject) return [...out, `${at}: not an object`];
  if (type === 'array' && !Array.isArray(value)) return [...out, `${at}: not an array`];
  if (type === 'string' && typeof value !== 'string') return [...out, `${at}: not a string`];
  if (type === 'boolean' && typeof value !== 'boolean') return [...out, `${at}: not a boolean`];
  if (type === 'number' && typeof value !== 'number') return [...out, `${at}: not a number`];
  if (type === 'integer' && !Number.isInteger(value)) return [...out, `${at}: not an integer`];
  const enumValues = schema['enum'] as unknown[] | undefined;
  if (enumValues !== undefined && !enumValues.includes(value)) out.push(`${at}: not in enum`);
  if (typeof value === 'number') {
    const { minimum, maximum, exclusiveMinimum } = schema as Record<string, number | undefined>;
    if (minimum !== undefined && value < minimum) out.push(`${at}: below minimum`);
    if (maximum !== undefined && value > maximum) out.push(`${at}: above maximum`);
    if (exclusiveMinimum !== undefined && value <= exclusiveMinimum)
      out.push(`${at}: not above exclusiveMinimum`);
  }
  if (typeof value === 'string') {
    const pattern = schema['pattern'] as string | undefined;
    if (pattern !== undefined && !new RegExp(pattern, 'u').test(value)) out.push(`${at}: pattern`);
    const maxLength = schema['maxLength'] as number | undefined;
    if (maxLength !== undefined && value.length > maxLength) out.push(`${at}: too long`);
  }
  if (Array.isArray(value)) {
    const items = schema['items'] as JsonSchema | undefined;
    const { minItems, maxItems } = schema as Record<string, number | undefined>;
    if (minItems !== undefined && value.length < minItems) out.push(`${at}: too few items`);
    if (maxItems !== undefined && value.length > maxItems) out.push(`${at}: too many items`);
    if (items !== undefined)
      value.forEach((v, i) => out.push(...problems(items, v, `${at}[${i}]`)));
  }
  if (isObject) {
    const record = value as Record<string, unknown>;
    const properties = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
    for (const key of (schema['required'] ?? []) as string[])
      if (!(key in record)) out.push(`${at}.${key}: required`);
    for (const [key, member] of Object.entries(record)) {
      const property = properties[key];
      if (property !== undefined) out.push(...problems(property, member, `${at}.${key}`));
      else if (schema['additionalProperties'] === false) out.push(`${at}.${key}: not allowed`);
    }
  }
  return out;
}

describe('scenario.schema.json', () => {
  it('is what npm run schema generates from the shapes now', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8'), 'stale: run npm run schema').toBe(
      scenarioSchemaText(),
    );
  });

  it('is found by editors from every shipped scenario (a relative $schema line first)', () => {
    const files = shippedScenarios();
    expect(files).toContain(join('scenarios', 'bench', 'scale-1k.yaml'));
    for (const file of files) {
      const first = readFileSync(file, 'utf8').split('\n')[0] ?? '';
      const match = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(match, file).not.toBeNull();
      expect(resolve(dirname(file), match?.[1] ?? ''), file).toBe(resolve(SCHEMA_FILE));
      expect(existsSync(resolve(dirname(file), match?.[1] ?? ''))).toBe(true);
    }
  });

  it('accepts every shipped scenario', () => {
    const schema = scenarioJsonSchema();
    for (const file of shippedScenarios()) {
      expect(problems(schema, parse(readFileSync(file, 'utf8'))), file).toEqual([]);
    }
  });

  it.each([
    ['an unknown field', { name: 'x', topolgy: {} }, /topolgy: not allowed/],
    [
      'a repeat count over the limit',
      { name: 'x', workload: [{ repeat: { count: 1_000_001, every: '1s' }, request: 'GET /v1' }] },
      /matches no alternative/,
    ],
    [
      'a rate of 0',
      {
        name: 'x',
        workload: [{ arrivals: { poisson: { ratePerMinute: 0 }, for: '1m' }, request: 'GET /v1' }],
      },
      /matches no alternative/,
    ],
    [
      'a weight that is not whole',
      {
        name: 'x',
        workload: [
          {
            arrivals: { poisson: { ratePerMinute: 1 }, for: '1m' },
            mix: [{ weight: 1.5, request: 'GET /v1' }],
          },
        ],
      },
      /matches no alternative/,
    ],
    [
      'a bad duration',
      { name: 'x', workload: [{ at: '5 minutes', request: 'GET /v1' }] },
      /matches no alternative/,
    ],
    [
      'too many compute hosts',
      { name: 'x', topology: { compute: { count: 10_001 } } },
      /count: above maximum/,
    ],
  ])('refuses %s, as the validator does', (_what, data, problem) => {
    expect(() => toScenario(data)).toThrow();
    expect(problems(scenarioJsonSchema(), data).join('\n')).toMatch(problem);
  });

  it('describes the workload generators and the raised topology limits', () => {
    const schema = scenarioJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown>; items?: JsonSchema }>;
    };
    const entries = schema.properties['workload']?.items?.['anyOf'] as JsonSchema[];
    const keys = entries.map((entry) => Object.keys(entry['properties'] as object));
    expect(keys[0]).toContain('repeat');
    expect(keys[1]).toEqual(expect.arrayContaining(['arrivals', 'mix', 'pool']));
    expect(keys[2]).toEqual(expect.arrayContaining(['request', 'waitFor', 'expectStatus']));
    expect(entries.every((entry) => entry['additionalProperties'] === false)).toBe(true);
  });
});
