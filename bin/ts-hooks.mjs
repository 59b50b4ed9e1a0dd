// Module hooks that load the TypeScript sources directly: each .ts file is transformed by esbuild
// (types stripped, nothing bundled) as Node loads it, and the result is cached on disk by content,
// so a later start reads it back. No build step; and unlike general-purpose loaders it does not
// wrap every function in a name-keeping helper, which costs the simulator's hot paths dearly (names
// survive anyway: nothing is minified). Registered by ts-register.mjs and bin/cloudbed.js.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Node's own version, so esbuild leaves every syntax Node supports untouched. */
const target = `node${process.versions.node}`;
/** Bump when the transform options change: cached output keyed under the old value is ignored. */
const CACHE_VERSION = 1;
const cacheDir = fileURLToPath(new URL('../node_modules/.cache/cloudbed-ts/', import.meta.url));
let esbuild = null;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  const key = createHash('sha256')
    .update(`${CACHE_VERSION}\0${target}\0${path}\0`)
    .update(source)
    .digest('hex');
  const cached = join(cacheDir, `${key}.js`);
  try {
    return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  } catch {
    // Not cached yet.
  }
  esbuild ??= await import('esbuild');
  const { code } = await esbuild.transform(source, {
    loader: 'ts',
    format: 'esm',
    target,
    sourcefile: path,
    sourcemap: 'inline',
    // The project's compiler options that change emitted code (tsconfig.json).
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
  });
  try {
    mkdirSync(cacheDir, { recursive: true });
    // Written aside and renamed, so a concurrent start never reads half a file.
    const partial = `${cached}.${process.pid}.tmp`;
    writeFileSync(partial, code);
    renameSync(partial, cached);
  } catch {
    // A read-only tree runs uncached.
  }
  return { format: 'module', source: code, shortCircuit: true };
}
