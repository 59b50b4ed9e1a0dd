/**
 * `npm run schema`: writes scenario.schema.json, the scenario format as JSON Schema, generated
 * from the shapes that validate scenario files (src/sim/scenario.ts). test/unit/scenario-schema.test.ts
 * fails when the committed file is not what the shapes generate.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { scenarioSchemaText } from '../src/sim/scenario.ts';

const file = fileURLToPath(new URL('../scenario.schema.json', import.meta.url));
writeFileSync(file, scenarioSchemaText());
process.stdout.write(`wrote ${file}\n`);
