// `node --import ./bin/ts-register.mjs file.ts` runs a TypeScript entry point of this project
// (see ts-hooks.mjs). Source maps make stack traces point into the .ts files.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.mjs', import.meta.url);
