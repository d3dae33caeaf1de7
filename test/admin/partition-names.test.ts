// Partitions have an operator's name that clients cannot change: a client's C_InitToken sets
// the token label only; `--partition` takes a name or serial, never a label (a client could
// steer an operator's command to its own partition); a name or serial that answers to two
// partitions is refused, and `partition delete` finds its partition (or refuses) before it asks
// anything. A label a client sets reaches the operator's screen with its control characters shown.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF } from '../../src/pkcs11/constants.js';
import { request } from '../../src/protocol/p11kit/index.js';
import { call, initialize } from '../support/p11kit.js';
import { Daemon, linkWhenRegistered, makeClient, makeHome, registerClient, removeHome, runNtls, sleep, startDaemon, type TestClient } from '../support/daemon.js';

interface Row { name: string; serial: string; label: string; tokenObjects: number | null }

describe('partition names (the operator\'s) and token labels (the client\'s)', () => {
  let daemon: Daemon;
  let client: TestClient;
  const ntls = (...args: string[]) => runNtls([...args, '--home', daemon.home]);
  const list = async () => JSON.parse((await ntls('partition', 'list', '--json')).stdout) as Row[];

  beforeAll(async () => {
    daemon = await startDaemon(makeHome({ hsm: { kdfCost: 1024, pinMinLength: 4 } }));
    client = await makeClient('relabeler');
    registerClient(daemon.home, client, { host: '127.0.0.1' });
    // The verify-location monitor picks the certificate up within its interval.
    let assigned = await ntls('client', 'assign-partition', '-c', 'relabeler', '-p', 'default');
    for (let i = 0; assigned.status !== 0 && i < 50; i++) {
      await sleep(100);
      assigned = await ntls('client', 'assign-partition', '-c', 'relabeler', '-p', 'default');
    }
    expect(assigned.status).toBe(0);
  });
  afterAll(async () => {
    await daemon?.stop();
    removeHome(daemon.home);
  });

  it('a client\'s C_InitToken --label changes the token label, not the partition\'s name', async () => {
    const l = await linkWhenRegistered(daemon, client);
    await initialize(l);
    expect((await call(l, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'app1' }))).rv).toBe(0);
    const session = await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
    expect(session.rv).toBe(0);
    await l.close();
    const [row] = await list();
    expect(row).toMatchObject({ name: 'default', label: 'app1' });
    const shown = await ntls('partition', 'show', '--partition', 'default', '--json');
    expect(shown.status).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'default', label: 'app1' });
  });

  it('a client\'s label steers no operator command to its partition, and its control characters never reach the operator\'s screen raw', async () => {
    const l = await linkWhenRegistered(daemon, client);
    await initialize(l);
    // The label of a second row to forge, an escape sequence to clear the screen.
    const label = 'finance\x1b[2J\nFAKE';
    expect((await call(l, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label }))).rv).toBe(0);
    await l.close();
    const human = await ntls('partition', 'list');
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('finance\\x1b[2J\\x0aFAKE');
    expect([...human.stdout].filter((c) => c !== '\n' && c.charCodeAt(0) < 0x20)).toEqual([]);
    expect(human.stdout.split('\n').filter((line) => line.includes('FAKE'))).toHaveLength(1);
    expect((await list())[0]!.label).toBe(label);
    expect((await ntls('partition', 'show', '--partition', 'default')).stdout).not.toContain('\x1b');
    // Now a plain word no partition is named: assign and show refuse it and say whose label it is.
    const l2 = await linkWhenRegistered(daemon, client);
    await initialize(l2);
    expect((await call(l2, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'finance' }))).rv).toBe(0);
    await l2.close();
    const assigned = await ntls('client', 'assign-partition', '-c', 'relabeler', '-p', 'finance');
    expect(assigned.status).not.toBe(0);
    expect(assigned.stderr).toMatch(/token label of default.*NTLS_ERR_UNKNOWN_PARTITION/);
    expect((await ntls('partition', 'show', '--partition', 'finance')).status).not.toBe(0);
    // Put back as the next test expects it.
    const l3 = await linkWhenRegistered(daemon, client);
    await initialize(l3);
    expect((await call(l3, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'app1' }))).rv).toBe(0);
    await l3.close();
  });

  it('a label is no name, a name or serial answering to two partitions is refused, and delete asks nothing before it knows', async () => {
    expect((await ntls('partition', 'create', '--name', 'keys')).status).toBe(0);
    // "app1" is the label a client gave partition "default"; a second partition may not take it as a name.
    const taken = await ntls('partition', 'create', '--name', 'app1', '--json');
    expect(taken.status).not.toBe(0);
    expect(JSON.parse(taken.stdout || '{}').code ?? taken.stderr).toContain('NTLS_ERR_PARTITION_EXISTS');
    // A label is not a partition's name (a client may label its token as it likes): refused, naming whose label it is.
    expect((await ntls('partition', 'create', '--name', 'other', '--label', 'app1')).status).toBe(0);
    const byLabel = await ntls('partition', 'delete', '--partition', 'app1', '--force');
    expect(byLabel.status).not.toBe(0);
    expect(byLabel.stderr).toContain('NTLS_ERR_UNKNOWN_PARTITION');
    expect(byLabel.stderr).toMatch(/the token label of default \(serial \d+\), other \(serial \d+\)/);
    expect((await list()).map((r) => r.name).sort()).toEqual(['default', 'keys', 'other']);
    // An unknown partition is refused before any confirmation is asked (no --force, no terminal).
    const unknown = await ntls('partition', 'delete', '--partition', 'nothing-here');
    expect(unknown.stderr + unknown.stdout).toContain('NTLS_ERR_UNKNOWN_PARTITION');
    // By name, the one meant goes.
    expect((await ntls('partition', 'delete', '--partition', 'other', '--force')).status).toBe(0);
    expect((await list()).map((r) => r.name).sort()).toEqual(['default', 'keys']);
  });

  it('a deleted partition leaves no assignment behind; a serial a client still holds is revoked as it is', async () => {
    expect((await ntls('partition', 'create', '--name', 'short-lived')).status).toBe(0);
    const serial = (await list()).find((r) => r.name === 'short-lived')!.serial;
    expect((await ntls('client', 'assign-partition', '-c', 'relabeler', '-p', 'short-lived')).status).toBe(0);
    const partitions = async () => (JSON.parse((await ntls('client', 'show', '-c', 'relabeler', '--json')).stdout) as { partitions: string[] }).partitions;
    expect(await partitions()).toContain(serial);
    expect((await ntls('partition', 'delete', '--partition', 'short-lived', '--force')).status).toBe(0);
    expect(await partitions()).not.toContain(serial);
    // An assignment whose partition is gone (left by an older version, or a token undeployed):
    // revoked by its serial.
    const file = join(daemon.home, 'clients', 'relabeler.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { partitions: string[] };
    writeFileSync(file, JSON.stringify({ ...record, partitions: [...record.partitions, '123456789012'] }, null, 2));
    let held = await partitions();
    for (let i = 0; !held.includes('123456789012') && i < 50; i++) {
      await sleep(100);
      held = await partitions();
    }
    expect(held).toContain('123456789012');
    const revoked = await ntls('client', 'revoke-partition', '-c', 'relabeler', '-p', '123456789012');
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await partitions()).not.toContain('123456789012');
  });
});
