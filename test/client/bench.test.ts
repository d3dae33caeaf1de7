// `ntls-client bench` against a real daemon: a short count-limited run over 1 and 3
// connections with a generated P-256 key (destroyed afterwards), raw CKM_ECDSA on an existing
// key, signatures failing during a run (exit status 1), and the one-line failures of bad
// arguments. No figure is judged, only the shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeHome, runNtls, sleep } from '../support/daemon.js';
import { CO_PIN, expectOk, expectOneLineFailure, initialiseSlot, setUp, type Setup } from './support.js';

let s: Setup;

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
});
afterAll(async () => {
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

interface Row { connections: number; signatures: number; opsPerSecond: number; errors: number; latencyMs: { p50: number; p90: number; p99: number; max: number } }

describe('ntls-client bench', () => {
  it('--json: one row per connection count with ops/s and latency percentiles; the generated key is gone after', async () => {
    const result = JSON.parse(expectOk(await s.alice.run('bench', '--pin', CO_PIN, '--connections', '1,3', '--count', '30', '--json')).stdout);
    expect(result.mechanism).toBe('CKM_ECDSA_SHA256');
    expect(result.keyType).toBe('ec-p256');
    expect(result.rows.map((r: Row) => r.connections)).toEqual([1, 3]);
    for (const row of result.rows as Row[]) {
      expect(row.signatures).toBe(30);
      expect(row.errors).toBe(0);
      expect(row.opsPerSecond).toBeGreaterThan(0);
      expect(row.latencyMs.p50).toBeGreaterThan(0);
      expect(row.latencyMs.p50).toBeLessThanOrEqual(row.latencyMs.p90);
      expect(row.latencyMs.p90).toBeLessThanOrEqual(row.latencyMs.p99);
      expect(row.latencyMs.p99).toBeLessThanOrEqual(row.latencyMs.max);
    }
    const objects = JSON.parse(expectOk(await s.alice.run('list-objects', '--pin', CO_PIN, '--json')).stdout);
    expect(objects.filter((o: { label: string }) => o.label === result.label)).toEqual([]);
  });

  it('raw ecdsa on an existing key by label, for a time; the human output is a table', async () => {
    expectOk(await s.alice.run('generate-key', '--type', 'ec-p384', '--label', 'bench-p384', '--pin', CO_PIN));
    const human = expectOk(await s.alice.run('bench', '--pin', CO_PIN, '--label', 'bench-p384', '--mechanism', 'ecdsa', '--connections', '2', '--seconds', '0.5', '--data-bytes', '48'));
    expect(human.stdout).toMatch(/^CKM_ECDSA with "bench-p384" on local slot 0, 48-byte input$/m);
    expect(human.stdout).toMatch(/CONNECTIONS\s+OPS\/S\s+P50 MS\s+P90 MS\s+P99 MS\s+SIGNATURES\s+ERRORS/);
    expect(human.stdout).toMatch(/^2\s+\d+\.\d/m);
  });

  it('signatures that fail during the run (the partition revoked) are counted, and the status is 1', async () => {
    expectOk(await s.alice.run('generate-key', '--type', 'ec-p256', '--label', 'bench-revoked', '--pin', CO_PIN));
    const running = s.alice.run('bench', '--pin', CO_PIN, '--label', 'bench-revoked', '--connections', '1', '--seconds', '3', '--json');
    try {
      await sleep(1500);
      expectOk(await runNtls(['client', 'revoke-partition', '-c', 'alice', '-p', 'default', '--home', s.home]));
      const result = await running;
      expect(result.status, result.stderr).toBe(1);
      const row = (JSON.parse(result.stdout) as { rows: Row[] }).rows[0]!;
      expect(row.signatures).toBeGreaterThan(0);
      expect(row.errors).toBeGreaterThan(0);
      expect(result.stderr).toMatch(/signature\(s\) failed during the run/);
    } finally {
      await running;
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', s.home]));
    }
  });

  it('bad arguments and a missing key are one line and a non-zero status', async () => {
    expectOneLineFailure(await s.alice.run('bench', '--pin', CO_PIN, '--key-type', 'dsa-1024', '--count', '1'), 'NTLS_ERR_ARGUMENT');
    expectOneLineFailure(await s.alice.run('bench', '--pin', CO_PIN, '--label', 'no-such-key', '--count', '1'), 'NTLS_ERR_NO_SUCH_OBJECT');
    const badList = await s.alice.run('bench', '--pin', CO_PIN, '--connections', '1,x');
    expect(badList.status).not.toBe(0);
    expect(badList.stderr).toContain('connection counts');
  });

  it('the client deleted during a run: the run ends at once with the link\'s failure, not a new link per signature', async () => {
    expectOk(await s.alice.run('generate-key', '--type', 'ec-p256', '--label', 'bench-deleted', '--pin', CO_PIN));
    const from = s.daemon.log().length;
    const began = Date.now();
    const running = s.alice.run('bench', '--pin', CO_PIN, '--label', 'bench-deleted', '--connections', '1', '--seconds', '8', '--json');
    try {
      await sleep(1500);
      expectOk(await runNtls(['client', 'delete', '-c', 'alice', '--force', '--home', s.home]));
      const result = await running;
      expect(result.status).not.toBe(0);
      expect(Date.now() - began).toBeLessThan(7000);
      // Before, about 250 refused links a second until the run's time was up.
      const attempts = s.daemon.log().slice(from).filter((line) => line.includes('Connection accepted from')).length;
      expect(attempts).toBeLessThan(10);
    } finally {
      await running;
      expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', s.alice.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', s.home]));
    }
  });
});
