/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped. Two values that are
 * equal as data serialise to the same string, which is what trace hashing and trace comparison need
 * (insertion order of keys must never change a trace hash).
 */
import { AssertionError } from './assert.ts';

/** Serialises `value` canonically. Throws on values JSON cannot represent faithfully. */
export function toCanonicalJson(value: unknown): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  if (depth > 64) throw new AssertionError('canonical json: nesting deeper than 64');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value))
        throw new AssertionError(`canonical json: non-finite number ${value}`);
      return JSON.stringify(value);
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (Array.isArray(value))
        return `[${value.map((v) => write(v ?? null, depth + 1)).join(',')}]`;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      const parts: string[] = [];
      for (const key of keys) {
        const member = record[key];
        if (member === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${write(member, depth + 1)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new AssertionError(`canonical json: cannot serialise ${typeof value}`);
  }
}
