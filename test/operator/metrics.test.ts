// Issue 16, bug 7: the *_total series are Prometheus counters and go on over `ntls service restart`
// (a stop and a start in the same process); ntls_build_info says which version runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Daemon, keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, repoRoot, runNtls, startDaemon, type TestClient } from '../support/daemon.js';
import { freePort } from '../support/ports.js';
import { encodeErrorResponse } from '../../src/protocol/p11kit/messages.js';
import { METRICS_IDLE_MS, METRICS_MAX_CONNECTIONS } from '../../src/metrics/http-exporter.js';
import { CKR } from '../../src/pkcs11/constants.js';

let home: string;
let daemon: Daemon;
let client: TestClient;
let port: number;

beforeAll(async () => {
  port = await freePort();
  home = makeHome({ metrics: { enabled: true, port }, datapath: { receiveTimeout: 0 } });
  client = await makeClient('metered');
  registerClient(home, client);
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

async function scrape(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (!line) throw new Error(`no ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

/** The data path's port now (port 0: each start chooses one). */
async function datapathPort(): Promise<number> {
  const status = JSON.parse((await runNtls(['service', 'status', '--json', '--home', home])).stdout) as { listening: string };
  return Number(status.listening.split(':').at(-1));
}

async function oneRequest(): Promise<void> {
  const l = await link({ home, port: await datapathPort() } as Daemon, client);
  await l.request(keepaliveBody());
  await l.close();
}

describe('metrics', () => {
  it('every *_total series is typed counter; ntls_build_info is a gauge of 1', async () => {
    await oneRequest();
    const text = await scrape();
    const totals = [...text.matchAll(/^# TYPE (\S+_total) (\S+)$/gm)];
    expect(totals.length).toBeGreaterThanOrEqual(8);
    for (const [, name, type] of totals) expect(`${name} ${type}`).toBe(`${name} counter`);
    expect(text).toMatch(/^# TYPE ntls_connections gauge$/m);
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    expect(text).toContain(`ntls_build_info{version="${version}",node="${process.versions.node}"} 1`);
  });

  it('counters go on over `ntls service restart`, and over `ntls info reset`', async () => {
    await oneRequest();
    const before = await scrape();
    const connections = value(before, 'ntls_connections_total');
    const requests = value(before, 'ntls_requests_total{call="NTLS_Keepalive"}');
    const bytesIn = value(before, 'ntls_bytes_in_total');
    expect(connections).toBeGreaterThanOrEqual(2);
    expect(requests).toBe(2);
    const restart = await runNtls(['service', 'restart', '--force', '--home', home]);
    expect(restart.status, restart.stderr).toBe(0);
    await oneRequest();
    const after = await scrape();
    expect(value(after, 'ntls_connections_total')).toBeGreaterThan(connections);
    expect(value(after, 'ntls_requests_total{call="NTLS_Keepalive"}')).toBe(requests + 1);
    expect(value(after, 'ntls_bytes_in_total')).toBeGreaterThan(bytesIn);
    expect((await runNtls(['info', 'reset', '--home', home])).status).toBe(0);
    const reset = await scrape();
    expect(value(reset, 'ntls_requests_total{call="NTLS_Keepalive"}')).toBe(requests + 1);
    expect(value(reset, 'ntls_connections_total')).toBeGreaterThanOrEqual(value(after, 'ntls_connections_total'));
  });

  it('a p11-kit request body that does not decode is answered CKR_DEVICE_ERROR, counted as malformed, and the link goes on', async () => {
    const series = 'ntls_request_errors_total{call="malformed",rv="CKR_DEVICE_ERROR"}';
    const count = (text: string) => (text.includes(series + ' ') ? value(text, series) : 0);
    const before = count(await scrape());
    const l = await link({ home, port: await datapathPort() } as Daemon, client);
    try {
      // C_GetInfo (call id 3, signature "") with two bytes after its last argument.
      const body = Buffer.from([0, 0, 0, 3, 0, 0, 0, 0, 0xde, 0xad]);
      expect((await l.request(body)).body.equals(encodeErrorResponse(CKR.DEVICE_ERROR))).toBe(true);
      expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    } finally {
      await l.close();
    }
    expect(count(await scrape())).toBe(before + 1);
  });

  it('silent connections to the metrics port are bounded and closed: they cannot hold the daemon\'s descriptors', async () => {
    const sockets: Socket[] = [];
    let closed = 0;
    const extra = 6;
    await Promise.all(Array.from({ length: METRICS_MAX_CONNECTIONS + extra }, () => new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => resolve());
      socket.on('error', () => resolve());
      socket.on('close', () => closed++);
      sockets.push(socket);
    })));
    try {
      // Beyond the limit, closed at once; the silent ones within the idle time (and a bit).
      for (let i = 0; i < 50 && closed < extra; i++) await new Promise((r) => setTimeout(r, 20));
      expect(closed).toBeGreaterThanOrEqual(extra);
      for (let i = 0; i < (METRICS_IDLE_MS + 5000) / 100 && closed < sockets.length; i++) await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(sockets.length);
      expect(await scrape()).toContain('ntls_requests_total');
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 30_000);
});
