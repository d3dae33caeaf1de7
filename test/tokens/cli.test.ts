// `ntls token ...` against the real daemon: init, list, backup, deploy, eject and re-insert,
// undeploy, restore, a damaged image refused with its line, and a backup whose daemon is killed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, renameSync, watch, writeFileSync } from 'node:fs';
import { CKA, CKM, CKO, CKU } from '../../src/pkcs11/constants.js';
import { readImage } from '../../src/tokens/image.js';
import { CO_PIN, RW, SO_PIN, mech, readyHsm } from '../hsm/support.js';
import { Daemon, makeHome, removeHome, runNtls, startDaemon } from '../support/daemon.js';
import { TOKEN_PIN, TOKEN_SO_PIN, digest, join } from './support.js';

let home: string;
let daemon: Daemon;
let folder: string;

const ntls = (...args: string[]) => runNtls([...args, '--home', home]);
const t = (type: number, value: unknown) => ({ type, value }) as { type: number; value: never };

function expectOneLineFailure(result: { status: number | null; stderr: string }, code: string) {
  expect(result.status).not.toBe(0);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^ntls: /);
  expect(result.stderr).toContain(`[${code}]`);
}

beforeAll(async () => {
  home = makeHome({ hsm: { kdfCost: 1024 }, log: { debug: true } });
  folder = join(home, 'devices');
  // The partition and its keys are made before the daemon starts (the HSM is one process's).
  const { hsm, slot } = await readyHsm(home);
  const app = hsm.application('setup');
  const s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
  await app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, Buffer.from('06082a8648ce3d030107', 'hex')), t(CKA.TOKEN, true)], [t(CKA.TOKEN, true)]);
  await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.TOKEN, true)]);
  const bulk = await hsm.createPartition({ label: 'bulk', soPin: SO_PIN });
  const admin = hsm.application('bulk');
  const b = await admin.C_OpenSession(bulk.slotId, RW);
  await admin.C_Login(b, CKU.SO, SO_PIN);
  await admin.C_InitPIN(b, CO_PIN);
  await admin.C_Logout(b);
  await admin.C_Login(b, CKU.USER, CO_PIN);
  for (let i = 0; i < 600; i++) {
    await admin.C_CreateObject(b, [t(CKA.CLASS, CKO.DATA), t(CKA.TOKEN, true), t(CKA.PRIVATE, true), t(CKA.VALUE, randomBytes(64))]);
  }
  hsm.close();
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('ntls token', () => {
  it('init writes an image into the devices folder; the daemon sees it inserted', async () => {
    expect((await ntls('token', 'list')).stdout).toContain('no token inserted');
    const made = await ntls('token', 'init', '--label', 'Backup1', '--serial', '123456', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN);
    expect(made.status).toBe(0);
    expect(made.stdout).toContain('Backup1.ntlstoken created: label "Backup1", serial 123456');
    await daemon.waitForLog('NON Deployed token Backup1 with Serial Number 123456 inserted into slot 100!');
    const human = await ntls('token', 'list');
    expect(human.stdout.split('\n')[0]).toMatch(/^SLOT\s+CONTAINER\s+LABEL\s+SERIAL\s+STATE/);
    expect(JSON.parse((await ntls('token', 'list', '--json')).stdout)).toMatchObject([{ slot: 100, container: 1000, label: 'Backup1', serial: '123456', state: 'inserted' }]);
    expectOneLineFailure(await ntls('token', 'init', '--label', 'Backup1', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN), 'NTLS_ERR_IMAGE_EXISTS');
  });

  it('backup copies the partition\'s token objects into the token', async () => {
    const result = await ntls('token', 'backup', '--partition', 'test', '--token', 'Backup1', '--partition-pin', CO_PIN, '--token-pin', TOKEN_PIN);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^3 object\(s\) of test backed up to token Backup1 \(123456\) at /);
    expect(readImage(join(folder, 'Backup1.ntlstoken'))).toMatchObject({ objects: 3, backup: { sourceLabel: 'test', objects: 3 } });
    const wrongPartitionPin = await ntls('token', 'backup', '--partition', 'test', '--token', 'Backup1', '--partition-pin', 'wrong-pin', '--token-pin', TOKEN_PIN);
    expectOneLineFailure(wrongPartitionPin, 'CKR_PIN_INCORRECT');
    // Which of the two PINs: each counts towards its own lock.
    expect(wrongPartitionPin.stderr).toContain('the partition\'s PIN (--partition-pin or --partition-so-pin) is wrong');
    const wrongTokenPin = await ntls('token', 'backup', '--partition', 'test', '--token', 'Backup1', '--partition-pin', CO_PIN, '--token-pin', 'wrong-pin');
    expectOneLineFailure(wrongTokenPin, 'CKR_PIN_INCORRECT');
    expect(wrongTokenPin.stderr).toContain('the token\'s PIN (--token-pin) is wrong');
    expectOneLineFailure(await ntls('token', 'backup', '--partition', 'nope', '--token', 'Backup1', '--partition-pin', CO_PIN, '--token-pin', TOKEN_PIN), 'NTLS_ERR_UNKNOWN_PARTITION');
  });

  it('deploy, eject, insert again, undeploy: the guide\'s lines', async () => {
    const deployed = await ntls('token', 'deploy', '--token', 'Backup1');
    expect(deployed.stdout).toBe('token Backup1 (serial 123456) deployed at slot 100, container id 1000\n');
    await daemon.waitForLog('Added USB token: Backup1 with serial number: 123456 at slot: 100 and container id: 1000 to Virtual token list');
    await daemon.waitForLog('debug : 0 : Created VToken for 100/1000.');
    expectOneLineFailure(await ntls('token', 'backup', '--partition', 'test', '--token', 'Backup1', '--partition-pin', CO_PIN, '--token-pin', TOKEN_PIN), 'NTLS_ERR_TOKEN_DEPLOYED');

    renameSync(join(folder, 'Backup1.ntlstoken'), join(home, 'Backup1.ntlstoken'));
    await daemon.waitForLog('Deployed token Backup1 with Serial Number 123456 ejected from slot 100!');
    expect(JSON.parse((await ntls('token', 'list', '--json')).stdout)).toMatchObject([{ serial: '123456', state: 'deployed-ejected' }]);
    renameSync(join(home, 'Backup1.ntlstoken'), join(folder, 'Backup1.ntlstoken'));
    await daemon.waitForLog('Re-deployed the  USB token: Backup1 with serial number: 123456 to Virtual token list');
    await daemon.waitForLog('Deployed token Backup1 with Serial Number 123456 inserted into slot 100!');

    expect((await ntls('token', 'undeploy', '--token', '123456')).stdout).toBe('token Backup1 (serial 123456) undeployed\n');
    await daemon.waitForLog('USB token: Backup1 with serial number: 123456 has been undeployed!');
    expectOneLineFailure(await ntls('token', 'undeploy', '--token', '123456'), 'NTLS_ERR_TOKEN_NOT_DEPLOYED');
  });

  it('a damaged image is refused with its line; nothing else is affected', async () => {
    const junk = join(folder, 'junk.ntlstoken');
    writeFileSync(junk, randomBytes(3000));
    const before = digest(junk);
    await daemon.waitForLog('error : 0xc0000002 : Unable to initialize VToken 101/1001 : RC_GENERAL_ERROR');
    expectOneLineFailure(await ntls('token', 'deploy', '--token', 'junk'), 'NTLS_ERR_IMAGE_DAMAGED');
    expect(digest(junk)).toBe(before);
    const list = JSON.parse((await ntls('token', 'list', '--json')).stdout) as Array<{ file: string; state: string }>;
    expect(list.map((r) => [r.file, r.state])).toEqual([['Backup1.ntlstoken', 'inserted'], ['junk.ntlstoken', 'refused']]);
  });

  it('restore into a new partition brings the objects back; all or nothing, the mode is asked for', async () => {
    expect((await ntls('partition', 'delete', '--partition', 'test', '--force')).status).toBe(0);
    // A partition made without --so-pin is not initialised: the refusal says how to make it so.
    expect((await ntls('partition', 'create', '--name', 'bare')).status).toBe(0);
    const bare = await ntls('token', 'restore', '--token', 'Backup1', '--partition', 'bare', '--partition-so-pin', SO_PIN, '--token-pin', TOKEN_PIN);
    expectOneLineFailure(bare, 'CKR_TOKEN_NOT_RECOGNIZED');
    expect(bare.stderr).toContain('--so-pin');
    expect((await ntls('partition', 'delete', '--partition', 'bare', '--force')).status).toBe(0);
    expect((await ntls('partition', 'create', '--label', 'again', '--so-pin', SO_PIN)).status).toBe(0);
    const restored = await ntls('token', 'restore', '--token', 'Backup1', '--partition', 'again', '--partition-so-pin', SO_PIN, '--token-pin', TOKEN_PIN);
    expect(restored.stderr).toBe('');
    expect(restored.stdout).toBe('3 object(s) restored into again\n');
    const partitions = JSON.parse((await ntls('partition', 'list', '--json')).stdout) as Array<{ label: string; tokenObjects: number }>;
    expect(partitions.find((p) => p.label === 'again')?.tokenObjects).toBe(3);
    expectOneLineFailure(await ntls('token', 'restore', '--token', 'Backup1', '--partition', 'again', '--partition-so-pin', SO_PIN, '--token-pin', TOKEN_PIN), 'NTLS_ERR_RESTORE_MODE');
    const wrongTokenPin = await ntls('token', 'restore', '--token', 'Backup1', '--partition', 'again', '--add', '--partition-so-pin', SO_PIN, '--token-pin', 'wrong-pin');
    expectOneLineFailure(wrongTokenPin, 'CKR_PIN_INCORRECT');
    expect(wrongTokenPin.stderr).toContain('the token\'s PIN (--token-pin) is wrong');
    const added = await ntls('token', 'restore', '--token', 'Backup1', '--partition', 'again', '--add', '--partition-so-pin', SO_PIN, '--token-pin', TOKEN_PIN, '--json');
    expect(JSON.parse(added.stdout)).toMatchObject({ added: 0, skipped: 3 });
  });

  it('init works without a daemon, into --file', async () => {
    const file = join(home, 'offline.ntlstoken');
    const made = await runNtls(['token', 'init', '--label', '', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN, '--file', file, '--home', join(home, 'no-daemon-here'), '--json']);
    expect(made.status).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ label: '', formatVersion: 1 });
    expect(readImage(file).label).toBe('');
  });

  it('init prints a label\'s control characters as \\xNN, never raw to the terminal', async () => {
    const file = join(home, 'escaped.ntlstoken');
    const made = await runNtls(['token', 'init', '--label', 'A\x1b[2JB', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN, '--file', file, '--home', join(home, 'no-daemon-here')]);
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toContain('label "A\\x1b[2JB"');
    expect(made.stdout + made.stderr).not.toContain('\x1b');
    expect(readImage(file).label).toBe('A\x1b[2JB');
  });

  it('init --name takes a file name, not a path: the image cannot land outside the devices folder', async () => {
    for (const name of ['../../escaped', 'a/b', '..', '']) {
      const made = await ntls('token', 'init', '--label', 'T', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN, '--name', name);
      expectOneLineFailure(made, 'NTLS_ERR_ADMIN_ARGUMENT');
      expect(made.status).toBe(2);
    }
    expect(existsSync(join(home, '..', 'escaped.ntlstoken'))).toBe(false);
  });

  it('a backup whose daemon is killed says whether the token kept its previous backup', async () => {
    const made = await ntls('token', 'init', '--label', 'Bulk', '--so-pin', TOKEN_SO_PIN, '--pin', TOKEN_PIN);
    expect(made.status).toBe(0);
    await daemon.waitForLog('NON Deployed token Bulk with Serial Number');
    const path = join(folder, 'Bulk.ntlstoken');
    const before = digest(path);
    // Stop the daemon the moment its working copy appears, then kill it: if the copy is still
    // there, the backup had not replaced the image.
    let copyAtStop: boolean | null = null;
    const watcher = watch(folder, (_event, name) => {
      if (copyAtStop !== null || !name?.startsWith('.Bulk.ntlstoken.backup-')) return;
      daemon.child.kill('SIGSTOP');
      copyAtStop = readdirSync(folder).some((n) => n.startsWith('.Bulk.ntlstoken.backup-'));
      daemon.child.kill('SIGKILL');
    });
    const result = await ntls('token', 'backup', '--partition', 'bulk', '--token', 'Bulk', '--partition-pin', CO_PIN, '--token-pin', TOKEN_PIN);
    watcher.close();
    await daemon.exited;
    expect(copyAtStop).not.toBeNull();
    if (copyAtStop) {
      expectOneLineFailure(result, 'NTLS_ERR_BACKUP_INTERRUPTED');
      expect(result.stderr).toContain('backup interrupted: the token keeps its previous content (it held no backup)');
      expect(digest(path)).toBe(before);
      expect(readImage(path).backup).toBeNull();
    } else {
      expect(result.stdout).toContain('only after the backup completed');
      expect(readImage(path).backup?.objects).toBe(600);
    }
    // The next start clears the working copy; the token is there as it was.
    daemon = await startDaemon(home);
    expect(readdirSync(folder).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(existsSync(path)).toBe(true);
    await daemon.waitForLog('NON Deployed token Bulk with Serial Number');
  });
});

// Runs the `ntls token` examples of docs/operations.md.
