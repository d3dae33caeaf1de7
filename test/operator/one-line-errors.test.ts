// Issue 16, bug 2: filesystem and configuration errors of `ntls` are one line (message, hint,
// code), never a Node stack, for the daemon's start as for the operator's commands.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { removeHome, repoRoot, runNtls, type RunResult } from '../support/daemon.js';

const homes: string[] = [];
afterAll(() => {
  for (const h of homes.splice(0)) removeHome(h);
});

function scratch(): string {
  const h = mkdtempSync(join(tmpdir(), 'ntls-errors-'));
  homes.push(h);
  return h;
}

/** One line on stderr, `ntls: ...; hint. [CODE]`, no stack; returns the code. */
function oneLine(result: RunResult): string {
  expect(result.status).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  const match = /^ntls: .+; .+\. \[([A-Z0-9_]+)\]$/.exec(lines[0]!);
  expect(match, lines[0]).not.toBeNull();
  return match![1]!;
}

describe('one line for a home that cannot be used', () => {
  it('start --home on a file', async () => {
    const result = await runNtls(['start', '--home', '/etc/passwd', '--quiet']);
    expect(oneLine(result)).toBe('NTLS_ERR_FILE');
    expect(result.stderr).toContain('/etc/passwd is a file, not a folder');
    expect(result.status).toBe(2);
  });

  it('start --home below a file', async () => {
    const result = await runNtls(['start', '--home', '/etc/passwd/home', '--quiet']);
    expect(oneLine(result)).toBe('NTLS_ERR_FILE');
  });

  it('config set and config show in a home that is a file', async () => {
    expect(oneLine(await runNtls(['config', 'set', 'log.debug', 'true', '--home', '/etc/passwd']))).toBe('NTLS_ERR_CONFIG');
    expect(oneLine(await runNtls(['config', 'show', '--home', '/etc/passwd']))).toBe('NTLS_ERR_CONFIG');
  });

  it('a configuration file that is not JSON, for config set, config show and start', async () => {
    const h = scratch();
    writeFileSync(join(h, 'ntls.json'), '{ "server": ');
    for (const args of [['config', 'set', 'log.debug', 'true'], ['config', 'show'], ['partition', 'policy'], ['start', '--quiet']]) {
      const result = await runNtls([...args, '--home', h]);
      expect(oneLine(result)).toBe('NTLS_ERR_CONFIG');
      expect(result.status).toBe(2);
    }
  });

  it('a configuration file that is a folder', async () => {
    const h = scratch();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(h, 'ntls.json'));
    expect(oneLine(await runNtls(['config', 'show', '--home', h]))).toBe('NTLS_ERR_CONFIG');
    expect(oneLine(await runNtls(['start', '--quiet', '--home', h]))).toBe('NTLS_ERR_CONFIG');
  });
});

describe('what was typed, repeated in a failure', () => {
  it('an escape sequence in an unknown command comes back as \\x1b, in both CLIs', async () => {
    const typed = 'bad\x1b[2J';
    const ntls = await runNtls([typed]);
    expect(ntls.stderr).toContain('bad\\x1b[2J');
    expect(ntls.stderr).not.toContain('\x1b');
    const client = spawnSync(process.execPath, [join(repoRoot, 'dist/src/cli/ntls-client.js'), typed], { encoding: 'utf8' });
    expect(client.stderr).toContain('bad\\x1b[2J');
    expect(client.stderr).not.toContain('\x1b');
  });
});
