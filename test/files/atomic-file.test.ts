// writeFileAtomic (every output file of ntls and ntls-client): a regular file is replaced whole;
// a FIFO or a device is written into, never replaced by a file (renamed over /dev/null as root,
// it broke every program on the machine: `--out /dev/null`); a symbolic link keeps its place, its
// file is replaced. The FIFO stands for the devices: a test that wrote /dev/null itself would, on
// a regression, break the machine it runs on.
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/files/atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ntls-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces a regular file whole and leaves no temporary behind', () => {
    const file = join(dir, 'out.bin');
    writeFileSync(file, 'old');
    writeFileAtomic(file, 'new contents');
    expect(readFileSync(file, 'utf8')).toBe('new contents');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes into a FIFO (as /dev/stdout or a process substitution would be): the pipe stays a pipe and its reader gets the bytes', async () => {
    const fifo = join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    reader.stdout.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise<void>((resolve) => reader.once('close', () => resolve()));
    const guard = setTimeout(() => reader.kill('SIGKILL'), 10_000);
    writeFileAtomic(fifo, 'through the pipe\n');
    await closed;
    clearTimeout(guard);
    expect(got).toBe('through the pipe\n');
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('a symbolic link stays a link; the file it names gets the new contents', () => {
    const real = join(dir, 'real.pem');
    const link = join(dir, 'link.pem');
    writeFileSync(real, 'old');
    symlinkSync(real, link);
    writeFileAtomic(link, 'new');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('new');
  });
});
