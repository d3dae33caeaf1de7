// Installing the client side on a client host in one command, as README.md says: a tarball of
// this checkout (`npm pack`), installed globally (here into a temporary prefix), gives
// `ntls-client` on PATH: --version answers, and the PKCS#11 module it points at was built.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { repoRoot } from '../support/daemon.js';

const work = mkdtempSync(join(tmpdir(), 'ntls-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }, timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

it('npm pack, then `npm install -g ./ntls-VERSION.tgz`: ntls-client --version and module-path work', async () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  // --ignore-scripts: pack's `prepare` would rebuild dist/ of this checkout while other test files
  // start daemons from it (and test/scripts/unless-npx.test.ts checks nothing rebuilt it); the test
  // line has built dist/ already, and that is what the tarball takes.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot }, 300_000);
  expect(pack.status, pack.stderr).toBe(0);
  const tarball = `ntls-${version}.tgz`;
  expect(existsSync(join(work, tarball))).toBe(true);

  // The README's command; the prefix is a temporary folder instead of the system's.
  const prefix = join(work, 'prefix');
  const install = await run('npm', ['install', '-g', `./${tarball}`, '--prefer-offline', '--no-audit', '--no-fund'],
    { cwd: work, env: { npm_config_prefix: prefix } }, 900_000);
  expect(install.status, install.stdout + install.stderr).toBe(0);

  const client = join(prefix, 'bin', 'ntls-client');
  const shown = await run(client, ['--version'], { cwd: work }, 30_000);
  expect(shown.status, shown.stderr).toBe(0);
  expect(shown.stdout.trim()).toBe(version);
  const module = await run(client, ['module-path'], { cwd: work }, 30_000);
  expect(module.status, module.stderr).toBe(0);
  expect(module.stdout.trim().startsWith(prefix)).toBe(true);
  expect(existsSync(module.stdout.trim())).toBe(true);
}, 1_200_000);
