// Logs written by the real daemon: every line recognised by explain, and check finding the
// unexpected ones and pairing each connection with its disconnect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { explainLine } from '../../../src/admin/logs/explain.js';
import type { CheckSummary } from '../../../src/admin/logs/check.js';
import {
  Daemon, keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, runNtls, sleep, startDaemon, type TestClient,
} from '../../support/daemon.js';

let home: string;
let daemon: Daemon;
let alice: TestClient;
const ports: Record<string, number> = {};

function rawConnect(port: number, send: Buffer | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write(send));
    let local = 0;
    socket.on('connect', () => (local = socket.localPort!));
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => resolve(local));
    setTimeout(() => reject(new Error('raw connection not closed by the daemon within 10 s')), 10_000);
  });
}

beforeAll(async () => {
  home = makeHome({ datapath: { handshakeTimeout: 1500, receiveTimeout: 0 } });
  alice = await makeClient('alice');
  registerClient(home, alice);
  daemon = await startDaemon(home);

  // A successful connection.
  const good = await link(daemon, alice);
  ports.good = good.socket.localPort!;
  await good.request(keepaliveBody());
  await good.close();
  await daemon.waitForLog(new RegExp(`has disconnected: 127\\.0\\.0\\.1/${ports.good}$`));

  // An unregistered client.
  const stranger = await makeClient('stranger');
  await link(daemon, stranger).catch(() => undefined);
  await daemon.waitForLog('Client credentials cannot be verified');

  // A plain-TCP peer.
  ports.plain = await rawConnect(daemon.port, 'hello ntls\r\n');
  await daemon.waitForLog(new RegExp(`has disconnected: 127\\.0\\.0\\.1/${ports.plain}$`));

  // A malformed request header.
  const bad = await link(daemon, alice);
  ports.malformed = bad.socket.localPort!;
  const header = Buffer.alloc(12);
  header.writeUInt32BE(1, 0);
  header.writeUInt32BE(0xfffffff0, 8);
  bad.writeRaw(header);
  await daemon.waitForLog(new RegExp(`has disconnected: 127\\.0\\.0\\.1/${ports.malformed}$`));
  await sleep(100);
  await daemon.stop();
});

afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('logs of the real daemon', () => {
  it('explain recognises every line', () => {
    const lines = readFileSync(daemon.logFile, 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(20);
    const explained = lines.map((raw, i) => explainLine(raw, i + 1));
    expect(explained.filter((e) => e.status !== 'recognised').map((e) => e.raw)).toEqual([]);
    const ids = new Set(explained.map((e) => e.id));
    for (const id of ['startingUp', 'connectionAccepted', 'clientAuthenticated', 'clientDisconnected', 'clientCredentialsRejected',
      'nonLunaClient', 'requestHeaderMalformed', 'terminated']) {
      expect(ids, id).toContain(id);
    }
  });

  it('explain --json prints one object per line, all recognised', async () => {
    const result = await runNtls(['logs', 'explain', '--json', daemon.logFile]);
    expect(result.status).toBe(0);
    const records = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { status: string; id: string; kind: string; line: number });
    expect(records.length).toBe(daemon.log().length);
    expect(records.every((r) => r.status === 'recognised')).toBe(true);
    expect(records.map((r) => r.line)).toEqual(records.map((_, i) => i + 1));
  });

  it('check finds the unexpected messages and pairs every connection with its disconnect', async () => {
    const result = await runNtls(['logs', 'check', '--json', '--home', home]);
    expect(result.status).toBe(1);
    const summary = JSON.parse(result.stdout) as CheckSummary;
    expect(summary.unknown.count).toBe(0);
    expect(summary.recognised).toBe(summary.lines);
    const kinds = summary.unexpected.map((k) => k.id);
    expect(kinds).toEqual(expect.arrayContaining(['nonLunaClient', 'requestHeaderMalformed']));
    expect(summary.unexpected.find((k) => k.id === 'requestHeaderMalformed')!.count).toBe(1);
    expect(summary.unexpected.every((k) => k.section.endsWith('-unexpected'))).toBe(true);
    expect(summary.mismatches).toEqual([]);
    const c = summary.connections;
    expect(c.accepted).toBeGreaterThanOrEqual(3);
    expect(c.paired).toBe(c.accepted);
    expect(c.withoutDisconnect).toEqual([]);
    expect(summary.crashes).toEqual({ lines: [], dumpFiles: [] });
  });

  it('check counts as expected what the guide expects: the rejected client, the good connection', async () => {
    const result = await runNtls(['logs', 'check', '--json', daemon.logFile]);
    const summary = JSON.parse(result.stdout) as CheckSummary;
    const kinds = summary.unexpected.map((k) => k.id);
    expect(kinds).not.toContain('clientCredentialsRejected');
    expect(kinds).not.toContain('connectionAccepted');
  });

  it('check --ignore leaves chosen kinds out of the verdict', async () => {
    const first = JSON.parse((await runNtls(['logs', 'check', '--json', daemon.logFile])).stdout) as CheckSummary;
    const all = first.unexpected.map((k) => k.id);
    // The refused client of this log is a finding too (issue 16): --ignore takes its id as well.
    const refusals = [...new Set(first.refusedClients.map((r) => r.id))];
    expect(refusals).toEqual(['clientCredentialsRejected']);
    const result = await runNtls(['logs', 'check', '--json', '--ignore', [...all, ...refusals].join(','), daemon.logFile]);
    expect(result.status).toBe(0);
    const summary = JSON.parse(result.stdout) as CheckSummary;
    expect(summary.unexpected).toEqual([]);
    expect(summary.refusedClients).toEqual([]);
    expect(summary.ignored.map((k) => k.id)).toEqual(all);
    expect(summary.refusedIgnored).toBe(first.refusedClients.length);
    expect(summary.findings).toEqual([]);
    // Ignored is still listed, the refusals too, as logs.md says.
    const human = await runNtls(['logs', 'check', '--ignore', [...all, ...refusals].join(','), daemon.logFile]);
    expect(human.stdout).toContain(`and ${first.refusedClients.length} refused client connection(s)`);
  });

  it('check lists refused clients one row per address, client and reason, with a count', async () => {
    const result = await runNtls(['logs', 'check', daemon.logFile]);
    const section = result.stdout.slice(result.stdout.indexOf('Refused clients:'));
    expect(section).toMatch(/ADDRESS\s+CLIENT\s+WHY\s+COUNT\s+FIRST\s+LAST/);
    expect(section).toMatch(/\n\s*127\.0\.0\.1\s+\S+\s+clientCredentialsRejected\s+\d+\s/);
  });

  it('tail --client shows the lines of that client\'s connections, the accept before its name included', async () => {
    const result = await runNtls(['logs', 'tail', '-n', '100', '--client', 'alice', daemon.logFile]);
    expect(result.status).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const peers = new Set(lines.map((l) => /127\.0\.0\.1\/(\d+)/.exec(l)?.[1]).filter(Boolean));
    expect(peers).toEqual(new Set([String(ports.good), String(ports.malformed)]));
    expect(lines.some((l) => l.includes(`Connection accepted from: 127.0.0.1/${ports.good}`))).toBe(true);
    expect(lines.some((l) => l.includes('Client request header malformed'))).toBe(true);
    expect(lines.some((l) => l.includes('non-Luna'))).toBe(false);
  });
});
