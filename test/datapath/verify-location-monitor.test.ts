// The verify-location monitor's own rescans (its poll and the watcher's) when the folder cannot be
// read for a reason other than the folder: no file descriptor left (EMFILE) while something holds
// them all. The attacker's probe killed the daemon that way, holding 20,000 idle sockets.
import { mkdtempSync, rmSync } from 'node:fs';
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
});
