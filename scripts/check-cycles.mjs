// Fails when the import graph of src/ has a cycle. Uses TypeScript's own import scanner
// (ts.preProcessFile), resolves relative specifiers, and reports every strongly connected
// component with more than one module (or a module importing itself).
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(process.argv[2] ?? 'src');

function listTs(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listTs(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const files = listTs(root);
const graph = new Map();
for (const file of files) {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const deps = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    let target = resolve(dirname(file), ref.fileName);
    if (!target.endsWith('.ts'))
      target = existsSync(`${target}.ts`) ? `${target}.ts` : join(target, 'index.ts');
    if (existsSync(target)) deps.push(target);
  }
  graph.set(file, deps);
}

// Tarjan's strongly connected components, iterative over the sorted file list for stable output.
let index = 0;
const indices = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function connect(v) {
  indices.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!indices.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), indices.get(w)));
    }
  }
  if (low.get(v) === indices.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component);
  }
}
for (const file of [...graph.keys()].sort()) if (!indices.has(file)) connect(file);

if (cycles.length > 0) {
  for (const cycle of cycles) {
    console.error(
      `import cycle: ${cycle
        .map((f) => relative(process.cwd(), f))
        .sort()
        .join(' <-> ')}`,
    );
  }
  process.exit(1);
}
console.log(`no import cycles among ${files.length} modules`);
