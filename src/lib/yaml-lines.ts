/**
 * Line numbers for validation errors in YAML files: the line of the node at a field path, so an
 * error can say `file.yaml:12: topology.compute.count: …`.
 */
import { isMap, isScalar, type LineCounter, type Node as YamlNode } from 'yaml';
import type { FieldPath } from './shape.ts';

/** The 1-based line of the node at `path`, or of its nearest existing ancestor. */
export function lineOf(
  root: YamlNode | null,
  path: FieldPath,
  lineCounter: LineCounter,
): number | undefined {
  let node: unknown = root;
  let line: number | undefined;
  const lineAt = (offset: number | undefined): void => {
    if (offset !== undefined) line = lineCounter.linePos(offset).line;
  };
  lineAt((root as { range?: [number] } | null)?.range?.[0]);
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === part);
      if (pair === undefined) break;
      lineAt((pair.key as { range?: [number] }).range?.[0]);
      node = pair.value;
    } else if (
      node !== null &&
      typeof node === 'object' &&
      'items' in node &&
      typeof part === 'number'
    ) {
      const item = (node as { items: unknown[] }).items[part];
      if (item === undefined) break;
      lineAt((item as { range?: [number] }).range?.[0]);
      node = item;
    } else {
      break;
    }
  }
  return line;
}
