// Store integrity through the real daemon: a key's attribute row altered on disk stops the start
// with the guide's device-error lines and the file untouched (nothing altered is ever served); a
// damaged sealed secret fails that key alone with CKR_DEVICE_ERROR, never a signature.
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Link } from '../../src/client/link.js';
import { CKA, CKF, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { attr, outputRequest, P11KIT_HANDSHAKE, request } from '../../src/protocol/p11kit/index.js';
import { call } from '../support/p11kit.js';
import {
  Daemon, link, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon, type TestClient,
} from '../support/daemon.js';

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const storeFile = (home: string) => join(home, 'hsm', 'hsm.db');
const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function withDb<T>(home: string, use: (db: Database.Database) => T): T {
  const db = new Database(storeFile(home));
  try {
    return use(db);
  } finally {
    db.close();
  }
}

describe('through the daemon: a corrupted record is never served', () => {
  let home: string;
  let daemon: Daemon | undefined;
  let client: TestClient;

  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    removeHome(home);
  });

  /** A partition with an EC key pair and an AES key made over the wire; returns the public point. */
  async function keysOverTheWire(): Promise<{ ecPoint: Buffer }> {
    home = makeHome({ hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0 } });
    client = await makeClient('keeper');
    registerClient(home, client);
    daemon = await startDaemon(home);
    expect((await runNtls(['partition', 'create', '--label', 'vault', '--so-pin', 'so-pin-1', '--home', home])).status).toBe(0);
    expect((await runNtls(['client', 'assign-partition', '-c', 'keeper', '-p', 'vault', '--home', home])).status).toBe(0);
    const l = await link(daemon, client);
    const session = await userSession(l, true);
    const pair = await call(l, request('C_GenerateKeyPair', {
      session, mechanism: { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      publicKeyTemplate: [attr.bytes(CKA.EC_PARAMS, P256), attr.bool(CKA.TOKEN, true), attr.bytes(CKA.LABEL, 'signer')],
      privateKeyTemplate: [attr.bool(CKA.TOKEN, true), attr.bool(CKA.SIGN, true), attr.bool(CKA.PRIVATE, true), attr.bytes(CKA.LABEL, 'signer')],
    }));
    expect(pair.rv).toBe(CKR.OK);
    const aes = await call(l, request('C_GenerateKey', {
      session, mechanism: { type: CKM.AES_KEY_GEN, parameter: null },
      template: [attr.ulong(CKA.VALUE_LEN, 32), attr.bool(CKA.TOKEN, true), attr.bool(CKA.ENCRYPT, true), attr.bytes(CKA.LABEL, 'sealer')],
    }));
    expect(aes.rv).toBe(CKR.OK);
    const point = await call(l, request('C_GetAttributeValue', { session, object: pair.args.publicKey as number, template: [{ type: CKA.EC_POINT, length: 128 }] }));
    await l.close();
    await daemon.stop();
    daemon = undefined;
    return { ecPoint: (point.args.template as Array<{ value: { value: Buffer } }>)[0]!.value.value };
  }

  async function userSession(l: Link, initialise: boolean): Promise<number> {
    expect((await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }))).rv).toBe(CKR.OK);
    if (initialise) {
      const so = (await call(l, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
      expect((await call(l, request('C_Login', { session: so, userType: CKU.SO, pin: Buffer.from('so-pin-1') }))).rv).toBe(CKR.OK);
      expect((await call(l, request('C_InitPIN', { session: so, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
      expect((await call(l, request('C_Logout', { session: so }))).rv).toBe(CKR.OK);
    }
    const session = (await call(l, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
    expect((await call(l, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    return session;
  }

  async function findByLabel(l: Link, session: number, label: string, cls: number): Promise<number> {
    expect((await call(l, request('C_FindObjectsInit', { session, template: [attr.bytes(CKA.LABEL, label), attr.ulong(CKA.CLASS, cls)] }))).rv).toBe(CKR.OK);
    const found = await call(l, request('C_FindObjects', { session, objects: outputRequest(4) }));
    await call(l, request('C_FindObjectsFinal', { session }));
    return (found.args.objects as number[])[0]!;
  }

  it('a public key\'s attribute row altered on disk: the start is refused with the guide\'s device-error lines, the file left as it was', async () => {
    const { ecPoint } = await keysOverTheWire();
    withDb(home, (db) => {
      const rows = db.prepare('SELECT id, attributes FROM objects').all() as { id: number; attributes: Buffer }[];
      const row = rows.find((r) => r.attributes.includes(ecPoint))!;
      const at = row.attributes.indexOf(ecPoint) + ecPoint.length - 1;
      row.attributes[at] = row.attributes[at]! ^ 0x01;
      db.prepare('UPDATE objects SET attributes = ? WHERE id = ?').run(row.attributes, row.id);
    });
    const before = digest(storeFile(home));
    const from = readFileSync(`${home}/logs/lunalogs`, 'utf8').split('\n').length - 1;
    const error = await startDaemon(home).then((d) => { daemon = d; return null; }, (e: unknown) => e as { status: number; stderr: string });
    expect(error).not.toBeNull();
    expect(error!.status).toBe(1);
    expect(error!.stderr).toMatch(/fail their integrity check \(objects \d+\)/);
    const lines = readFileSync(`${home}/logs/lunalogs`, 'utf8').split('\n').slice(from);
    expect(lines.some((l) => / local5 err  NTLS \[\d+\]: error : 0x300000 : Fail to retrieve container list : LUNA_RET_DEVICE_ERROR$/.test(l))).toBe(true);
    expect(lines.some((l) => / local5 crit  NTLS \[\d+\]: critical : 0x300000 : Unable to load system containers! : LUNA_RET_DEVICE_ERROR$/.test(l))).toBe(true);
    expect(digest(storeFile(home))).toBe(before);
  });

  it('a sealed secret damaged on disk: that key answers CKR_DEVICE_ERROR, never a signature; the other keys are served', async () => {
    await keysOverTheWire();
    withDb(home, (db) => {
      const rows = db.prepare('SELECT id, sealed FROM objects WHERE sealed IS NOT NULL ORDER BY id').all() as { id: number; sealed: Buffer }[];
      // The private key is the first sealed row (made before the AES key).
      const row = rows[0]!;
      const at = row.sealed.length - 3;
      row.sealed[at] = row.sealed[at]! ^ 0x01;
      db.prepare('UPDATE objects SET sealed = ? WHERE id = ?').run(row.sealed, row.id);
    });
    daemon = await startDaemon(home);
    const l = await link(daemon, client);
    const session = await userSession(l, false);
    const key = await findByLabel(l, session, 'signer', 3 /* CKO_PRIVATE_KEY */);
    // The secret is unsealed at C_SignInit (or at the latest at C_Sign): either answers the error.
    const init = (await call(l, request('C_SignInit', { session, mechanism: { type: CKM.ECDSA, parameter: null }, key }))).rv;
    const signed = init === CKR.OK ? await call(l, request('C_Sign', { session, data: Buffer.alloc(32, 1), signature: outputRequest(64) })) : { rv: init, args: {} };
    expect(signed.rv).toBe(CKR.DEVICE_ERROR);
    expect(signed.args.signature ?? null).toBeNull();
    const aes = await findByLabel(l, session, 'sealer', 4 /* CKO_SECRET_KEY */);
    expect((await call(l, request('C_EncryptInit', { session, mechanism: { type: CKM.AES_ECB, parameter: null }, key: aes }))).rv).toBe(CKR.OK);
    const encrypted = await call(l, request('C_Encrypt', { session, data: Buffer.alloc(16, 2), encryptedData: outputRequest(16) }));
    expect(encrypted.rv).toBe(CKR.OK);
    await l.close();
  });
});
