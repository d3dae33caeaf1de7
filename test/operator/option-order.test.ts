// `ntls --home H client list`, `ntls-client --json verify`: the options every command takes are
// taken before the command words too (the newcomer's probe typed them there and got a usage error).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedOptionsLast } from '../../src/cli/option-order.js';
import { runNtls } from '../support/daemon.js';
import { runClient } from '../client/support.js';

const work = mkdtempSync(join(tmpdir(), 'ntls-option-order-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('sharedOptionsLast', () => {
  const shared = { flags: ['--json'], valued: ['--home'] };
  it('moves the shared options before the command words after them, values with them', () => {
    expect(sharedOptionsLast(['--json', '--home', 'h', 'client', 'list'], shared)).toEqual(['client', 'list', '--json', '--home', 'h']);
    expect(sharedOptionsLast(['--home=h', 'status'], shared)).toEqual(['status', '--home=h']);
    expect(sharedOptionsLast(['client', 'list', '--json'], shared)).toEqual(['client', 'list', '--json']);
  });
  it('leaves anything else, and shared options without a command, for commander to judge', () => {
    expect(sharedOptionsLast(['--bogus', '--json', 'status'], shared)).toEqual(['--bogus', '--json', 'status']);
    expect(sharedOptionsLast(['--json'], shared)).toEqual(['--json']);
    expect(sharedOptionsLast(['--home'], shared)).toEqual(['--home']);
  });
});

describe('the two CLIs', () => {
  it('ntls --json --home H status: the status of that home, as JSON (exit 3: not running)', async () => {
    const home = join(work, 'home');
    const result = await runNtls(['--json', '--home', home, 'status']);
    expect(result.status, result.stderr).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({ running: false, home });
  });

  it('ntls-client --json --config-dir D verify: the command\'s own failure, as JSON, not a usage error', async () => {
    const result = await runClient(['--json', '--config-dir', join(work, 'client'), 'verify']);
    expect((JSON.parse(result.stdout) as { error: { code: string } }).error.code).toBe('NTLS_ERR_UNKNOWN_SERVER');
  });
});
