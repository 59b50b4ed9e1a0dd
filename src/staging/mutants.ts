/**
 * Known-broken variants of the control plane for staging: a chaos experiment must catch them
 * against the real services, as the property suites catch their in-process counterparts
 * (scripts/mutants/catalog.ts). A mutant is textual patches of a copy of this checkout's sources
 * (`<stateDir>/mutants/<name>/`, with `node_modules` linked), built on first use and rebuilt when
 * the sources change; `cloudbed process --mutant NAME` runs the copy's code in place of its own.
 * Only a staging file with `mutants: { allow: true }` accepts them.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One textual replacement in one file under src/; the text must occur exactly once. */
export interface SourcePatch {
  readonly file: string;
  readonly find: string;
  readonly replace: string;
}

/** The agents' fence checks, removed (shared with the property suites' catalogue). */
export const AGENT_FENCE_PATCHES: readonly SourcePatch[] = [
  {
    file: 'control/agents/agent-kit.ts',
    find: 'return token < fences.get(resource) ? STALE_TOKEN : null;',
    replace: 'void token; return null; // mutant: agents execute stale commands',
  },
  {
    file: 'control/agents/agent-service.ts',
    find: 'if (command.token < this.fences.get(resource)) {',
    replace: 'if (command.token < 0) { // mutant',
  },
];

/** PostgreSQL's fence check, removed: the store applies writes with stale tokens. */
const SQL_STORE_FENCE: SourcePatch = {
  file: 'adapters/sql-event-store.ts',
  find: [
    'if (newest > token) throw new StaleTokenError(resource, token, newest);',
    "    assert(newest === token, 'fence upsert must keep the greater token');",
  ].join('\n'),
  replace: 'void newest; // mutant: the store applies writes with stale fencing tokens',
};

/** The main loop's check that it still holds the lock before it sends, removed. */
const SEND_CHECK: SourcePatch = {
  file: 'control/mainloop/main-loop.ts',
  find: 'if (session.expired || !(await session.holds(lease))) {',
  replace: 'if (false as boolean) { // mutant: a stale holder sends',
};

/** A staging mutant. */
export interface StagingMutant {
  readonly description: string;
  readonly patches: readonly SourcePatch[];
}

export const STAGING_MUTANTS: Readonly<Record<string, StagingMutant>> = {
  'no-store-fence': {
    description: 'PostgreSQL applies writes whose fencing token is older than one it has seen',
    patches: [SQL_STORE_FENCE],
  },
  'no-fence': {
    description:
      'neither the store nor the agents check fencing tokens, and a stale main loop sends',
    patches: [SQL_STORE_FENCE, ...AGENT_FENCE_PATCHES, SEND_CHECK],
  },
};

/** Why `name` cannot run on this deployment, or null. */
export function mutantProblem(allow: boolean, name: string): string | null {
  if (!allow)
    return `the staging file does not allow mutants: add 'mutants: { allow: true }' to a deployment meant for it`;
  if (STAGING_MUTANTS[name] === undefined)
    return `no mutant '${name}'; mutants: ${Object.keys(STAGING_MUTANTS).join(', ')}`;
  return null;
}

/** This checkout's root. */
function projectRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** A digest of every file under `dir`, by path and content. */
function treeDigest(dir: string, hash = createHash('sha256'), base = dir): string {
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) treeDigest(path, hash, base);
    else hash.update(path.slice(base.length)).update('\0').update(readFileSync(path));
  }
  return base === dir ? hash.digest('hex') : '';
}

/**
 * The root of the mutant's copy of this checkout under `stateDir`, built (or rebuilt, when the
 * sources or the patches changed) now. Throws when a patch's text is not found exactly once.
 */
export function mutantTree(stateDir: string, name: string): string {
  const mutant = STAGING_MUTANTS[name];
  if (mutant === undefined) throw new Error(`no mutant '${name}'`);
  const root = projectRoot();
  const stamp = createHash('sha256')
    .update(treeDigest(join(root, 'src')))
    .update(treeDigest(join(root, 'bin')))
    .update(JSON.stringify(mutant.patches))
    .digest('hex');
  const tree = join(stateDir, 'mutants', name);
  const stampFile = join(tree, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return tree;
  // Built aside and renamed into place, so processes starting together never see half a tree.
  const building = `${tree}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  for (const part of ['src', 'bin'])
    cpSync(join(root, part), join(building, part), { recursive: true });
  cpSync(join(root, 'package.json'), join(building, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(building, 'node_modules'));
  for (const patch of mutant.patches) {
    const file = join(building, 'src', patch.file);
    const text = readFileSync(file, 'utf8');
    const found = text.split(patch.find).length - 1;
    if (found !== 1) {
      rmSync(building, { recursive: true, force: true });
      throw new Error(
        `mutant ${name}: the text to replace occurs ${found} times in src/${patch.file} (must be once)`,
      );
    }
    writeFileSync(file, text.replace(patch.find, patch.replace));
  }
  writeFileSync(join(building, '.stamp'), stamp);
  if (!(existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp)) {
    rmSync(tree, { recursive: true, force: true });
    try {
      renameSync(building, tree);
      return tree;
    } catch (error) {
      // Another process put the same tree in place first; anything else is a failure.
      if (!existsSync(stampFile)) throw error;
    }
  }
  rmSync(building, { recursive: true, force: true });
  return tree;
}
