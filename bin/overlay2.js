#!/usr/bin/env node
// Runner for the CLI: the TypeScript is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write('overlay2: not built yet; run `npm ci` or `npm run build` in ' + join(here, '..') + '\n');
  process.exit(1);
}
const { main } = await import(entry);
process.exitCode = await main(process.argv);
