// missingFile: "does not exist" only for a file that is not there. A file in a folder this user
// cannot enter was reported as missing (existsSync is false there too): an operator running
// `ntls client register` as the service's user was sent looking for a file that was there.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/daemon.js';

const root = mkdtempSync(join(tmpdir(), 'ntls-missing-'));
chmodSync(root, 0o755);
afterAll(() => {
  chmodSync(join(root, 'closed'), 0o700);
  rmSync(root, { recursive: true, force: true });
});

describe('missingFile', () => {
  it('is true for nothing there, false for a file in a folder closed to this user', () => {
    const closed = join(root, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    writeFileSync(join(closed, 'app3.pem'), 'x');
    // Root enters every folder: the check runs as nobody then; another user closes the folder to itself.
    const asNobody = process.getuid?.() === 0;
    if (!asNobody) chmodSync(closed, 0o000);
    const script = `import { missingFile } from ${JSON.stringify(join(repoRoot, 'dist/src/files/missing-file.js'))};
      import { existsSync } from 'node:fs';
      console.log(JSON.stringify([missingFile(process.argv[1]), existsSync(process.argv[1]), missingFile(process.argv[2])]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, join(closed, 'app3.pem'), join(root, 'none.pem')],
      { encoding: 'utf8', ...(asNobody ? { uid: 65534, gid: 65534 } : {}) });
    // existsSync said false for the closed folder's file; missingFile does not.
    expect(JSON.parse(out)).toEqual([false, false, true]);
  });
});
