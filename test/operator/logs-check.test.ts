// Issue 16, bug 5: `ntls logs check` on the log of a healthy run made by the real daemon (start,
// clients connecting and disconnecting, stop) is clean; a refused client, or a failing one (ended
// by the receive timer), is reported with exit status 1.
import { describe, expect, it } from 'vitest';
import type { CheckSummary } from '../../src/admin/logs/check.js';
import { keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon } from '../support/daemon.js';

async function check(home: string): Promise<{ status: number | null; summary: CheckSummary }> {
  const result = await runNtls(['logs', 'check', '--json', '--home', home]);
  return { status: result.status, summary: JSON.parse(result.stdout) as CheckSummary };
}

describe('ntls logs check on real runs', () => {
  it('a healthy run checks clean (exit 0)', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 0 } });
    try {
      const app = await makeClient('app1');
      registerClient(home, app);
      const daemon = await startDaemon(home);
      for (let i = 0; i < 3; i++) {
        const l = await link(daemon, app);
        await l.request(keepaliveBody());
        await l.close();
      }
      await daemon.waitForLog(/Connection instance removed/);
      await daemon.stop();
      const { status, summary } = await check(home);
      expect(summary.findings).toEqual([]);
      expect(status).toBe(0);
      expect(summary.unexpected).toEqual([]);
      expect(summary.connections).toMatchObject({ accepted: 3, paired: 3, withoutDisconnect: [] });
      expect(summary.routine.map((k) => k.id)).toContain('clientRequestedTermination');
    } finally {
      removeHome(home);
    }
  });

  it('a refused client is reported (exit 1)', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 0 } });
    try {
      const daemon = await startDaemon(home);
      const stranger = await makeClient('stranger');
      await link(daemon, stranger).then((l) => l.close(), () => undefined);
      await daemon.waitForLog('Client credentials cannot be verified');
      await daemon.stop();
      const { status, summary } = await check(home);
      expect(status).toBe(1);
      expect(summary.refusedClients).toEqual([expect.objectContaining({ id: 'clientCredentialsRejected', peer: expect.stringMatching(/^127\.0\.0\.1\//) })]);
      expect(summary.findings).toContain('1 client connection refused');
    } finally {
      removeHome(home);
    }
  });

  it('a registered client linking from another host than its registered one is a refused client (exit 1)', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 0 } });
    try {
      const elsewhere = await makeClient('elsewhere');
      registerClient(home, elsewhere, { host: '192.0.2.7' });
      const daemon = await startDaemon(home);
      await link(daemon, elsewhere).then((l) => l.close(), () => undefined);
      await daemon.waitForLog('Client credentials cannot be verified');
      await daemon.stop();
      const { status, summary } = await check(home);
      expect(status).toBe(1);
      expect(summary.refusedClients).toEqual([expect.objectContaining({ id: 'clientCredentialsUnverified', peer: expect.stringMatching(/^127\.0\.0\.1\//) })]);
      expect(summary.findings).toContain('1 client connection refused');
    } finally {
      removeHome(home);
    }
  });

  it('a failing client, ended by the receive timer, is reported (exit 1)', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 1 } });
    try {
      const app = await makeClient('silent');
      registerClient(home, app);
      const daemon = await startDaemon(home);
      const l = await link(daemon, app);
      await daemon.waitForLog('Receive timer expired', 15_000);
      await l.close().catch(() => undefined);
      await daemon.stop();
      const { status, summary } = await check(home);
      expect(status).toBe(1);
      expect(summary.findings.join(' ')).toMatch(/ended by a receive timer/);
    } finally {
      removeHome(home);
    }
  });
});
