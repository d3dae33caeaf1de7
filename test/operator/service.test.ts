// Running as a service (issue 16): the systemd unit is valid and hardened as docs/service.md
// says; under systemd (JOURNAL_STREAM set) the daemon writes its lines on stdout for the journal,
// without its own timestamps, and lunalogs as always.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeHome, ntlsBin, removeHome, repoRoot, startDaemon } from '../support/daemon.js';

const unit = readFileSync(join(repoRoot, 'deploy/systemd/ntls.service'), 'utf8');
const setting = (key: string) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

describe('deploy/systemd/ntls.service', () => {
  it('has its own user and home, a restart policy and the hardening docs/service.md lists', () => {
    expect(setting('User')).toEqual(['ntls']);
    expect(setting('StateDirectory')).toEqual(['ntls']);
    expect(setting('ExecStart')[0]).toMatch(/ntls start --home \/var\/lib\/ntls$/);
    expect(setting('Restart')).toEqual(['on-failure']);
    for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ReadWritePaths', '/var/lib/ntls'], ['PrivateTmp', 'yes'],
      ['ProtectHome', 'yes'], ['PrivateDevices', 'yes'], ['CapabilityBoundingSet', ''], ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6']]) {
      expect(setting(key!), key).toEqual([value]);
    }
    expect(setting('MemoryDenyWriteExecute')).toEqual([]);
    const docs = readFileSync(join(repoRoot, 'docs/service.md'), 'utf8');
    expect(docs).toContain('sudo install -m 0644 deploy/systemd/ntls.service /etc/systemd/system/ntls.service');
  });

  it('systemd-analyze verify accepts it (ExecStart pointed at this build)', () => {
    const folder = mkdtempSync(join(tmpdir(), 'ntls-unit-'));
    try {
      const file = join(folder, 'ntls.service');
      writeFileSync(file, unit.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${ntlsBin} start --home /var/lib/ntls`));
      const out = execFileSync('systemd-analyze', ['verify', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toBe('');
    } finally {
      removeHome(folder);
    }
  });
});

describe('under systemd', () => {
  it('JOURNAL_STREAM set: log lines on stdout as <priority>text with no timestamp; lunalogs unchanged', async () => {
    const home = makeHome();
    try {
      const daemon = await startDaemon(home, { JOURNAL_STREAM: '8:12345' });
      await daemon.waitForLog('TCP keep alive');
      await daemon.stop();
      const lines = daemon.stdout.split('\n').filter((l) => l.startsWith('<'));
      expect(lines).toContain('<6>info : 0 : Starting up NTLS........');
      expect(lines).toContain('<6>info : 0 : NTLS terminated');
      for (const line of lines) expect(line).toMatch(/^<[2-7]>(crit|error|warning|info|debug|[A-Za-z])/);
      expect(daemon.stdout).not.toMatch(/^<\d>.*\d\d:\d\d:\d\d/m);
      expect(daemon.log()[0]).toMatch(/^\d{4} \w{3} \d\d \d\d:\d\d:\d\d .* NTLS \[\d+\]: info : 0 : Starting up NTLS/);
    } finally {
      removeHome(home);
    }
  });
});
