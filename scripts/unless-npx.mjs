#!/usr/bin/env node
// Runs a build step of `npm install` (the arguments: a command and its arguments), except when
// npx runs it. `npx ntls` in this folder makes npm (9 and later) install the folder itself into
// npx's cache to link its bins, and that install runs our `prepare` and `install` scripts in the
// working tree: tsc and node-gyp again, tens of seconds on the first npx in a new HOME, and a
// node-gyp that cannot fetch headers there wipes native/keepalive/build. `npm install` built
// everything already, so under npx (npm_command=exec) nothing is built. (npx shows nothing a
// lifecycle script prints, so there is nothing to say there to one who skipped npm install.)
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node scripts/unless-npx.mjs COMMAND [ARGS...]\n');
  process.exit(2);
}

if (process.env.npm_command === 'exec') process.exit(0);

const run = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
if (run.error) {
  process.stderr.write(`ntls: cannot run ${command}: ${run.error.message}\n`);
  process.exit(1);
}
process.exit(run.status ?? 1);
