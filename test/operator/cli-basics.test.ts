// The basics of `ntls` (issue 16): --version, an example in every subcommand's --help, a start
// message that says what to do next, and `cert show --pem`.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, makeHome, removeHome, repoRoot, runNtls, startDaemon } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
beforeAll(async () => {
  home = makeHome();
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

/** The command names under "Commands:" of a help text. */
function subcommands(help: string): string[] {
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return [];
  return help.slice(at + 11).split('\n').map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined && n !== 'help');
}

describe('ntls basics', () => {
  it('--version prints the package version', async () => {
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const result = await runNtls([flag]);
      expect(result.status).toBe(0);
      expect(result.stdout.trim()).toBe(version);
    }
  });

  it('every subcommand\'s --help ends with an example of itself', async () => {
    const leaves: string[][] = [];
    for (const group of subcommands((await runNtls(['--help'])).stdout)) {
      const inner = subcommands((await runNtls([group, '--help'])).stdout);
      if (inner.length === 0) leaves.push([group]);
      for (const name of inner) leaves.push([group, name]);
    }
    expect(leaves.length).toBeGreaterThan(30);
    const missing: string[] = [];
    // A few at a time: each is a node process of about a second of CPU, and forty at once starve
    // the other test files running beside this one.
    const queue = [...leaves];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let path = queue.shift(); path; path = queue.shift()) {
        const help = (await runNtls([...path, '--help'])).stdout;
        const examples = help.slice(help.indexOf('\nExamples:\n'));
        if (!help.includes('\nExamples:\n') || !examples.includes(`ntls ${path.join(' ')} `)) missing.push(path.join(' '));
      }
    }));
    expect(missing).toEqual([]);
  }, 240_000);

  it('the start message says what to do next: the certificate and its fingerprint, how to register a client, metrics', () => {
    const fingerprint = new X509Certificate(readFileSync(join(home, 'server', 'server.pem'))).fingerprint256;
    expect(daemon.stdout).toContain(`fingerprint         SHA-256 ${fingerprint}`);
    expect(daemon.stdout).toContain(`ntls client register --client NAME --cert NAME.pem --hostname CLIENT-HOST --home ${home}`);
    expect(daemon.stdout).toContain(`ntls cert show --pem --home ${home} > server.pem`);
    expect(daemon.stdout).toMatch(/metrics {13}off \(turn on: ntls config set metrics\.enabled true/);
  });

  it('cert show --pem prints the server certificate; cert show names it and its SHA-256 fingerprint', async () => {
    const pem = await runNtls(['cert', 'show', '--pem', '--home', home]);
    expect(pem.status).toBe(0);
    expect(pem.stdout).toBe(readFileSync(join(home, 'server', 'server.pem'), 'utf8'));
    const shown = await runNtls(['cert', 'show', '--home', home]);
    expect(shown.stdout).not.toContain('BEGIN CERTIFICATE');
    expect(shown.stdout).toMatch(/fingerprint\s+([0-9A-F]{2}:){31}[0-9A-F]{2}\n/);
    expect(shown.stdout).toContain(`key ${' '.repeat(9)}${join(home, 'server', 'server.key')}\n`);
  });
});
