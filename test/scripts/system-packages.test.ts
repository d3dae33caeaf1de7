// The bare-machine stop: with one tool the tests drive hidden (a PATH that has every command but
// pkcs11-tool), `npm test` ends at once with one line naming the Debian package and the command
// that installs it — not a hang, not an ENOENT stack, not a skipped test.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/daemon.js';

const INSTALL_LINE = /^ntls: missing Debian package that the tests drive: opensc \(pkcs11-tool\)\. Install with `(sudo )?apt-get install -y --no-install-recommends opensc` \(or `npm run system-packages`\), then run again\.$/;

/** A folder of links to every command on PATH except `hidden`: a machine without it. */
function pathWithout(hidden: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ntls-path-'));
  chmodSync(dir, 0o755);
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    if (!folder || !existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      if (name === hidden || existsSync(join(dir, name))) continue;
      symlinkSync(join(folder, name), join(dir, name));
    }
  }
  return dir;
}

interface Outcome { status: number | null; stdout: string; stderr: string }

/**
 * Runs a command in its own process group with a bound: if it is still running then, the whole
 * group is killed (a check that failed to stop `npm test` must not leave a test run behind).
 */
function runBounded(file: string, args: string[], env: NodeJS.ProcessEnv, options: { uid?: number; gid?: number } = {}, limitMs = 20_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} was still running after ${limitMs} ms: it must stop at once\n${stdout}\n${stderr}`));
    }, limitMs);
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe('a machine without pkcs11-tool (opensc)', () => {
  let path: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    path = pathWithout('pkcs11-tool');
    env = { ...process.env, PATH: path, npm_config_update_notifier: 'false' };
  });
  afterAll(() => rmSync(path, { recursive: true, force: true }));

  it('the check says so in one line, exit 1', async () => {
    const result = await runBounded(process.execPath, ['scripts/system-packages.mjs', 'check'], env, {}, 10_000);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toHaveLength(1);
    expect(lines(result.stderr)[0]).toMatch(INSTALL_LINE);
  });

  it('npm test stops at that line before building or testing anything', async () => {
    const result = await runBounded('npm', ['test', '--silent'], env);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toHaveLength(1);
    expect(lines(result.stderr)[0]).toMatch(INSTALL_LINE);
  });

  it('npm run test:integration stops there too', async () => {
    const result = await runBounded('npm', ['run', 'test:integration', '--silent'], env);
    expect(result.status).toBe(1);
    expect(lines(result.stderr)).toEqual([expect.stringMatching(INSTALL_LINE)]);
  });

  it('the installer, for a user who is not root and has no sudo, names the packages and the command', async () => {
    // As root (CI), the installer runs as nobody; otherwise as this user, who is not root.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const noSudo = pathWithout('sudo');
    try {
      rmSync(join(noSudo, 'pkcs11-tool'), { force: true });
      const result = await runBounded(process.execPath, [join(repoRoot, 'scripts/system-packages.mjs'), 'install'], { ...env, PATH: noSudo, HOME: tmpdir() }, asNobody, 10_000);
      expect(result.status).toBe(1);
      // (Other packages may be listed too: nobody may not reach every command root's PATH has.)
      expect(lines(result.stderr)).toEqual([expect.stringMatching(
        /^ntls: cannot install ([\w+.-]+ )*opensc( [\w+.-]+)*: not root, and sudo is not installed\. As root, run `apt-get install -y --no-install-recommends ([\w+.-]+ )*opensc( [\w+.-]+)*`, then run again\.$/,
      )]);
    } finally {
      rmSync(noSudo, { recursive: true, force: true });
    }
  });
});
