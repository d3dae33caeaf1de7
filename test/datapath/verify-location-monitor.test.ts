// The verify-location monitor's own rescans (its poll and the watcher's) when the folder cannot be
// read for a reason other than the folder: no file descriptor left (EMFILE) while something holds
// them all. The attacker's probe killed the daemon that way, holding 20,000 idle sockets. And its
// report of files that are not certificates: once, and again when SIGHUP asks it to look again.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VerifyLocationMonitor } from '../../src/datapath/verify-location-monitor.js';
import { Logger } from '../../src/log/logger.js';
import { ClientRegistry } from '../../src/registry/client-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'ntls-monitor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('VerifyLocationMonitor', () => {
  it('a poll that fails with EMFILE keeps the registrations and tries again, no uncaught error', async () => {
    const registry = new ClientRegistry(join(dir, 'clients'));
    registry.reload();
    let failures = 0;
    let reloads = 0;
    const reload = registry.reload.bind(registry);
    registry.reload = () => {
      reloads++;
      if (reloads <= 3) {
        failures++;
        throw Object.assign(new Error('EMFILE: too many open files, scandir'), { code: 'EMFILE' });
      }
      return reload();
    };
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    const monitor = new VerifyLocationMonitor(registry, new Logger({ file: join(dir, 'lunalogs'), host: 'test' }), () => undefined, 20);
    monitor.start();
    try {
      for (let i = 0; i < 100 && reloads < 5; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      monitor.stop();
      process.off('uncaughtException', onUncaught);
    }
    expect(failures).toBe(3);
    expect(reloads).toBeGreaterThanOrEqual(5);
    expect(uncaught).toEqual([]);
  });

  it('a file that is not a certificate is reported once, and again when asked to look again (SIGHUP)', () => {
    const folder = join(dir, 'clients-with-junk');
    mkdirSync(folder);
    writeFileSync(join(folder, 'junk.pem'), 'not a certificate');
    const registry = new ClientRegistry(folder);
    registry.reload();
    const logFile = join(dir, 'junk-lunalogs');
    const monitor = new VerifyLocationMonitor(registry, new Logger({ file: logFile, host: 'test' }), () => undefined, 60_000);
    const reported = () => readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('Load verify locations failed for single client')).length;
    monitor.start();
    try {
      monitor.rescan();
      expect(reported()).toBe(0);
      monitor.reportInvalidAgain();
      monitor.rescan();
      expect(reported()).toBe(1);
      monitor.rescan();
      expect(reported()).toBe(1);
    } finally {
      monitor.stop();
    }
  });
});
