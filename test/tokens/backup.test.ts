// Backup and restore: a partition with RSA, EC and AES keys and a certificate is backed up,
// deleted, restored; signatures and ciphertexts made before work with the restored keys and
// the other way round, every attribute is intact. Interrupted backups leave the previous one;
// a restore is all or nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { X509Certificate, createPublicKey, createVerify } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, renameSync } from 'node:fs';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { encodeAttributes } from '../../src/hsm/attribute-codec.js';
import type { Application as HsmApplication } from '../../src/token/index.js';
import { CKA, CKC, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { backupPartition, restorePartition, type ImageHandle } from '../../src/tokens/backup.js';
import { readImage } from '../../src/tokens/image.js';
import { type Hsm, CO_PIN, RW, SO_PIN, mech, openHsm, readyHsm, removeHome, rv, tempHome, text } from '../hsm/support.js';
import { repoRoot } from '../support/daemon.js';
import { TOKEN_PIN, devices, digest, imageOptions, join, makeImage } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;
let folder: string;

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const DATA = text('signed before the backup');
const t = (type: number, value: unknown) => ({ type, value }) as { type: number; value: never };

function handle(path: string): ImageHandle & { adopted: number } {
  const h = { path, info: readImage(path), adopted: 0, adopt: () => { h.adopted++; } };
  return h;
}

async function loggedIn(slotId: number): Promise<{ app: HsmApplication; s: number }> {
  const app = hsm.application(`app-${Math.random()}`);
  const s = await app.C_OpenSession(slotId, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
  return { app, s };
}

async function find(app: HsmApplication, s: number, label: string, objectClass: number): Promise<number> {
  await app.C_FindObjectsInit(s, [t(CKA.LABEL, text(label)), t(CKA.CLASS, objectClass)]);
  const [found] = await app.C_FindObjects(s, 2);
  await app.C_FindObjectsFinal(s);
  if (found === undefined) throw new Error(`no ${label}`);
  return found;
}

/** Every token object's attributes, encoded, as a sorted list: equal lists mean every attribute intact. */
function attributeSets(slotId: number): string[] {
  return [...hsm.partition(slotId).objects.values()].filter((o) => o.isToken)
    .map((o) => encodeAttributes(o.attributes).toString('hex')).sort();
}

/** A fresh partition with SO and Crypto Officer PINs, as `readyHsm` makes one. */
async function newPartition(label: string): Promise<number> {
  const { slotId } = await hsm.createPartition({ label, soPin: SO_PIN });
  const admin = hsm.application(`setup-${label}`);
  const s = await admin.C_OpenSession(slotId, RW);
  await admin.C_Login(s, CKU.SO, SO_PIN);
  await admin.C_InitPIN(s, CO_PIN);
  admin.finalize();
  return slotId;
}

const co = { role: 'co' as const, pin: CO_PIN };

let rsaSignature: Buffer;
let ecSignature: Buffer;
let aesCiphertext: Buffer;
let rsaSpki: Buffer;
let ecSpki: Buffer;
const IV = Buffer.alloc(16, 7);

beforeAll(async () => {
  home = tempHome();
  folder = devices(home);
  ({ hsm, slot } = await readyHsm(home));
  const { app, s } = await loggedIn(slot);
  const rsa = await app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN),
    [t(CKA.MODULUS_BITS, 2048), t(CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1])), t(CKA.TOKEN, true), t(CKA.LABEL, text('rsa'))],
    [t(CKA.TOKEN, true), t(CKA.LABEL, text('rsa')), t(CKA.ID, Buffer.from([1]))]);
  const ec = await app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256), t(CKA.TOKEN, true), t(CKA.LABEL, text('ec'))],
    [t(CKA.TOKEN, true), t(CKA.LABEL, text('ec'))]);
  const aes = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.TOKEN, true), t(CKA.LABEL, text('aes'))]);
  const certificate = await createSelfSignedCertificate({ commonName: 'backup test', keyType: 'ecdsa-p256', usage: 'server', dnsNames: ['x'] });
  await app.C_CreateObject(s, [
    t(CKA.CLASS, CKO.CERTIFICATE), t(CKA.CERTIFICATE_TYPE, CKC.X_509), t(CKA.TOKEN, true), t(CKA.LABEL, text('cert')),
    t(CKA.SUBJECT, text('subject')), t(CKA.VALUE, new X509Certificate(certificate.certificatePem).raw),
  ]);
  await app.C_CreateObject(s, [t(CKA.CLASS, CKO.DATA), t(CKA.TOKEN, true), t(CKA.PRIVATE, true), t(CKA.LABEL, text('data')), t(CKA.VALUE, text('private data'))]);
  // A session object is no token object: it is not backed up.
  await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 16), t(CKA.LABEL, text('session'))]);

  await app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), rsa.privateKey);
  rsaSignature = await app.C_Sign(s, DATA);
  await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), ec.privateKey);
  ecSignature = await app.C_Sign(s, DATA);
  await app.C_EncryptInit(s, mech(CKM.AES_CBC_PAD, { kind: 'bytes', value: IV }), aes);
  aesCiphertext = await app.C_Encrypt(s, DATA);
  const spki = async (h: number) => (await app.C_GetAttributeValue(s, h, [{ type: CKA.PUBLIC_KEY_INFO }])).attributes[0]!.value as Buffer;
  rsaSpki = await spki(rsa.publicKey);
  ecSpki = await spki(ec.publicKey);
  app.finalize();
});
afterAll(() => {
  hsm?.close();
  removeHome(home);
});

describe('backup, delete, restore', () => {
  it('round trip: the restored keys verify, sign, decrypt as the originals did; every attribute intact', async () => {
    const path = join(folder, 'Backup1.ntlstoken');
    await makeImage(path, 'Backup1', '123456');
    const before = attributeSets(slot);
    expect(before).toHaveLength(7);
    const reports: Array<[number, number]> = [];
    const image = handle(path);
    const result = await backupPartition({
      hsm: hsm.device, slot, partition: co, image, tokenPin: TOKEN_PIN, hsmOptions: imageOptions, id: 'first', onProgress: (d, n) => { reports.push([d, n]); },
    });
    expect(result).toMatchObject({ objects: 7, id: 'first', token: { serial: '123456' }, partition: { label: 'test' } });
    expect(reports.at(-1)).toEqual([7, 7]);
    expect(image.adopted).toBe(1);
    expect(readImage(path)).toMatchObject({ objects: 7, backup: { id: 'first', objects: 7, sourceLabel: 'test', at: result.at } });
    expect(readdirSync(folder)).toEqual(['Backup1.ntlstoken']);

    await hsm.deletePartition(slot);
    const restoredSlot = await newPartition('restored');
    const restored = await restorePartition({
      hsm: hsm.device, slot: restoredSlot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, mode: 'add',
    });
    expect(restored).toMatchObject({ added: 7, skipped: 0, removed: 0 });
    expect(attributeSets(restoredSlot)).toEqual(before);

    // And after a restart, from the store: the restored objects were written, not only kept in memory.
    hsm.close();
    hsm = await openHsm(home);
    expect(attributeSets(restoredSlot)).toEqual(before);

    const { app, s } = await loggedIn(restoredSlot);
    const rsaPrivate = await find(app, s, 'rsa', CKO.PRIVATE_KEY);
    const rsaPublic = await find(app, s, 'rsa', CKO.PUBLIC_KEY);
    const ecPrivate = await find(app, s, 'ec', CKO.PRIVATE_KEY);
    const ecPublic = await find(app, s, 'ec', CKO.PUBLIC_KEY);
    const aes = await find(app, s, 'aes', CKO.SECRET_KEY);
    // Made before, checked with the restored keys.
    await app.C_VerifyInit(s, mech(CKM.SHA256_RSA_PKCS), rsaPublic);
    await app.C_Verify(s, DATA, rsaSignature);
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), ecPublic);
    await app.C_Verify(s, DATA, ecSignature);
    await app.C_DecryptInit(s, mech(CKM.AES_CBC_PAD, { kind: 'bytes', value: IV }), aes);
    expect(await app.C_Decrypt(s, aesCiphertext)).toEqual(DATA);
    // Made with the restored keys, checked with the public keys taken before.
    const fresh = text('signed after the restore');
    await app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), rsaPrivate);
    const rsaAfter = await app.C_Sign(s, fresh);
    expect(createVerify('sha256').update(fresh).verify(createPublicKey({ key: rsaSpki, format: 'der', type: 'spki' }), rsaAfter)).toBe(true);
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), ecPrivate);
    const ecAfter = await app.C_Sign(s, fresh);
    expect(createVerify('sha256').update(fresh).verify({ key: createPublicKey({ key: ecSpki, format: 'der', type: 'spki' }), dsaEncoding: 'ieee-p1363' }, ecAfter)).toBe(true);
    app.finalize();
    slot = restoredSlot;
  });

  it('the image opens only with the token\'s PIN, and a wrong one is counted in the image', async () => {
    const path = join(folder, 'Backup1.ntlstoken');
    const attempt = () => restorePartition({
      hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: 'not-the-pin', hsmOptions: imageOptions, mode: 'add',
    });
    expect(await rv(attempt)).toBe(CKR.PIN_INCORRECT);
    const db = new Database(path, { readonly: true });
    expect((db.prepare('SELECT co_failures FROM partitions').get() as { co_failures: number }).co_failures).toBe(1);
    db.close();
    expect(await rv(() => backupPartition({
      hsm: hsm.device, slot, partition: { role: 'co', pin: 'wrong-co-pin' }, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, id: 'x',
    }))).toBe(CKR.PIN_INCORRECT);
    expect(readImage(path).backup?.id).toBe('first');
  });

  it('--add skips what is already there; --replace drops the partition\'s token objects first', async () => {
    const path = join(folder, 'Backup1.ntlstoken');
    const sets = attributeSets(slot);
    const again = await restorePartition({ hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, mode: 'add' });
    expect(again).toMatchObject({ added: 0, skipped: 7 });
    const { app, s } = await loggedIn(slot);
    await app.C_CreateObject(s, [t(CKA.CLASS, CKO.DATA), t(CKA.TOKEN, true), t(CKA.LABEL, text('extra'))]);
    app.finalize();
    expect(attributeSets(slot)).toHaveLength(8);
    const replaced = await restorePartition({ hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, mode: 'replace' });
    expect(replaced).toMatchObject({ added: 7, removed: 8 });
    expect(attributeSets(slot)).toEqual(sets);
  });
});

describe('interrupted backups and failed restores', () => {
  it('a token ejected during the backup keeps its previous backup, and the backup says so', async () => {
    const path = join(folder, 'Eject.ntlstoken');
    await makeImage(path, 'Eject', '2');
    await backupPartition({ hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, id: 'previous' });
    const previous = readImage(path).backup!;
    const { app, s } = await loggedIn(slot);
    await app.C_CreateObject(s, [t(CKA.CLASS, CKO.DATA), t(CKA.TOKEN, true), t(CKA.LABEL, text('newer'))]);
    app.finalize();
    const away = join(devices(home), '..', 'ejected.ntlstoken');
    const error = await backupPartition({
      hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, id: 'second',
      onProgress: () => renameSync(path, away),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NTLS_ERR_BACKUP_INTERRUPTED', message: `backup interrupted: the token keeps its previous backup of ${previous.at}` });
    expect(readImage(away)).toMatchObject({ objects: 7, backup: { id: 'previous', at: previous.at } });
    expect(readdirSync(folder).filter((n) => n.startsWith('.'))).toEqual([]);
    const { app: a2, s: s2 } = await loggedIn(slot);
    await a2.C_DestroyObject(s2, await find(a2, s2, 'newer', CKO.DATA));
    a2.finalize();
  });

  it('kill -9 of the process half way leaves the previous backup intact', async () => {
    const path = join(folder, 'Killed.ntlstoken');
    await makeImage(path, 'Killed', '3');
    // Enough objects for several batches.
    const { app, s } = await loggedIn(slot);
    for (let i = 0; i < 80; i++) {
      await app.C_CreateObject(s, [t(CKA.CLASS, CKO.DATA), t(CKA.TOKEN, true), t(CKA.PRIVATE, true), t(CKA.LABEL, text(`bulk-${i}`)), t(CKA.VALUE, text(`v${i}`))]);
    }
    app.finalize();
    await backupPartition({ hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, id: 'before-kill' });
    const before = readImage(path);
    const bytes = digest(path);
    const serial = hsm.partition(slot).row.serial;
    hsm.close();
    // The child backs up the same partition and stops after its first batch; it is killed there.
    const child = spawn(process.execPath, [join(repoRoot, 'dist/test/tokens/fixtures/backup-child.js'), home, serial, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not reach half way: ${out} ${err}`)), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('half way')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${out} ${err}`)));
    });
    expect(out).toMatch(/half way 32\/\d+/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(readdirSync(folder).some((n) => /^\.Killed\.ntlstoken\.backup-\d+$/.test(n))).toBe(true);
    expect(digest(path)).toBe(bytes);
    expect(readImage(path)).toEqual(before);
    hsm = await openHsm(home);
  });

  it('a restore that cannot read the whole backup changes nothing', async () => {
    const good = join(folder, 'Backup1.ntlstoken');
    const path = join(folder, 'Scratched.ntlstoken');
    copyFileSync(good, path);
    const db = new Database(path);
    const last = db.prepare('SELECT id, sealed FROM objects WHERE sealed IS NOT NULL ORDER BY id DESC LIMIT 1').get() as { id: number; sealed: Buffer };
    last.sealed[last.sealed.length - 1]! ^= 1;
    db.prepare('UPDATE objects SET sealed = ? WHERE id = ?').run(last.sealed, last.id);
    db.close();
    const sets = attributeSets(slot);
    expect(await rv(() => restorePartition({ hsm: hsm.device, slot, partition: co, image: handle(path), tokenPin: TOKEN_PIN, hsmOptions: imageOptions, mode: 'replace' })))
      .toBe(CKR.DEVICE_ERROR);
    expect(attributeSets(slot)).toEqual(sets);
    hsm.close();
    hsm = await openHsm(home);
    expect(attributeSets(slot)).toEqual(sets);
    expect(existsSync(path)).toBe(true);
  });
});
