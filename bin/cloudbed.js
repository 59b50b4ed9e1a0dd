#!/usr/bin/env node
// The `cloudbed` command. Loads the TypeScript sources directly (ts-hooks.mjs: esbuild strips the
// types as each file loads, no build step) and runs the CLI.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.mjs', import.meta.url);
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
if (code !== undefined) {
  // Flush stdout before exiting: the final verdict line must never be cut off in a pipe.
  process.stdout.write('', () => process.exit(code));
}
