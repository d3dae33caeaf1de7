// `npx ntls ...` right after `npm install`, as the README has it, in a HOME npx has never seen:
// it runs the built CLIs and builds nothing (npm links the folder into npx's cache, which runs our
// prepare and install scripts; scripts/unless-npx.mjs makes them do nothing under npx).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from '../support/daemon.js';

const BUILT = ['dist/src/cli/ntls.js', 'dist/src/cli/ntls-client.js', 'native/keepalive/build/Release/tcp_keepalive.node'];

it('npx ntls and npx ntls-client in a new HOME run at once and rebuild nothing', () => {
  const before = BUILT.map((file) => statSync(join(repoRoot, file)).mtimeMs);
  const home = mkdtempSync(join(tmpdir(), 'ntls-npx-home-'));
  // A fresh npm: nothing inherited from an npm that runs these tests; offline, so nothing is fetched.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
  try {
    for (const bin of ['ntls', 'ntls-client']) {
      const result = spawnSync('npx', [bin, '--help'], {
        cwd: repoRoot, env: { ...env, HOME: home, npm_config_offline: 'true', npm_config_update_notifier: 'false' }, encoding: 'utf8', timeout: 60_000,
      });
      expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
      expect(result.stdout).toContain(`Usage: ${bin} `);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  expect(BUILT.map((file) => statSync(join(repoRoot, file)).mtimeMs)).toEqual(before);
});
