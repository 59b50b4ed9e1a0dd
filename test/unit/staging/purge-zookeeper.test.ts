// Goal: the ZooKeeper step of a staging purge removes the run's whole subtree however deep —
// lock directories of killed holders sit three levels and more below the root — children before
// parents, counts what it removed, answers a missing root with nothing removed, and walks again
// when a node appears under one it is about to remove.
// Method: removeTree over a fake tree in a Map that refuses, as ZooKeeper does, to remove a node
// that still has children (NOT_EMPTY) and records each removal.
import { describe, expect, it } from 'vitest';
import { removeTree, type ZkTree } from '../../../src/staging/purge.ts';

function notEmpty(path: string): Error {
  return Object.assign(new Error(`NOT_EMPTY[-111] ${path}`), { code: -111 });
}

/** A tree of paths; `onRemove` may change it as a removal happens. */
function fakeTree(paths: readonly string[], onRemove?: (path: string, nodes: Set<string>) => void) {
  const nodes = new Set(paths);
  const removed: string[] = [];
  const childrenOf = (path: string): string[] =>
    [...nodes]
      .filter((n) => n.startsWith(`${path}/`) && !n.slice(path.length + 1).includes('/'))
      .map((n) => n.slice(path.length + 1));
  const tree: ZkTree = {
    children: (path) => Promise.resolve(nodes.has(path) ? childrenOf(path) : null),
    remove: (path) => {
      if (!nodes.has(path)) return Promise.resolve(false);
      if (childrenOf(path).length > 0) return Promise.reject(notEmpty(path));
      nodes.delete(path);
      removed.push(path);
      onRemove?.(path, nodes);
      return Promise.resolve(true);
    },
  };
  return { tree, nodes, removed };
}

const ROOT = '/cloudbed-p';
const DEEP = [
  ROOT,
  `${ROOT}/locks`,
  `${ROOT}/locks/vm%3Avm-1`,
  `${ROOT}/locks/vm%3Avm-1/lock-0001-0000000003`,
  `${ROOT}/locks/volume%3Avol-1`,
  `${ROOT}/locks/volume%3Avol-1/a`,
  `${ROOT}/locks/volume%3Avol-1/a/b`,
  `${ROOT}/locks/volume%3Avol-1/a/b/c`,
  `${ROOT}/other`,
];

describe('removeTree', () => {
  it('removes every node under the root, however deep, children before parents', async () => {
    const { tree, nodes, removed } = fakeTree([...DEEP, '/cloudbed-pq', '/cloudbed-pq/locks']);
    expect(await removeTree(tree, ROOT)).toBe(DEEP.length);
    expect([...nodes].sort()).toEqual(['/cloudbed-pq', '/cloudbed-pq/locks']);
    for (const path of removed) {
      const parent = path.slice(0, path.lastIndexOf('/'));
      if (DEEP.includes(parent))
        expect(removed.indexOf(path)).toBeLessThan(removed.indexOf(parent));
    }
  });

  it('removes nothing when the root is not there', async () => {
    const { tree, removed } = fakeTree(['/cloudbed-q']);
    expect(await removeTree(tree, ROOT)).toBe(0);
    expect(removed).toEqual([]);
  });

  it('walks again when a node appears under one it is about to remove', async () => {
    let added = false;
    const { tree, nodes } = fakeTree(DEEP, (path, all) => {
      if (!added && path === `${ROOT}/locks/vm%3Avm-1/lock-0001-0000000003`) {
        added = true;
        all.add(`${ROOT}/locks/vm%3Avm-1/lock-0002-0000000004`);
      }
    });
    expect(await removeTree(tree, ROOT)).toBe(DEEP.length + 1);
    expect(nodes.size).toBe(0);
  });
});
