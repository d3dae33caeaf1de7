// Encryption at rest: the store file alone reveals no key and no PIN; a wrong PIN cannot
// unlock the partition key; the default KDF has a real work factor.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { CKA, CKK, CKM, CKO, CKU } from '../../src/pkcs11/constants.js';
import { DEFAULT_KDF, SoftwareHsm, credentialAad } from '../../src/hsm/index.js';
import { softwareMechanisms } from '../../src/hsm/mechanisms/index.js';
import { HsmStore, storePath } from '../../src/store/hsm-store.js';
import { openCredential } from '../../src/store/credential.js';
import { unseal } from '../../src/store/seal.js';
import { objectAad } from '../../src/hsm/object.js';
import { CO_PIN, CU_PIN, RW, SO_PIN, mech, readyHsm, removeHome, tempHome } from '../hsm/support.js';

let home: string;

beforeEach(async () => { home = tempHome(); });
afterEach(() => removeHome(home));

/** Every byte the store has on disk: the database and, if present, its WAL. */
function storeBytes(): Buffer {
  const path = storePath(home);
  return Buffer.concat([path, `${path}-wal`].filter(existsSync).map((f) => readFileSync(f)));
}

describe('the store file\'s mode', () => {
  it('is owner-only (0600), its WAL too, whatever the umask', async () => {
    const { hsm, slot } = await readyHsm(home);
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [{ type: CKA.TOKEN, value: true }, { type: CKA.VALUE_LEN, value: 32 }]);
    const path = storePath(home);
    for (const file of [path, `${path}-wal`].filter(existsSync)) expect((statSync(file).mode & 0o777).toString(8), file).toBe('600');
    await hsm.shutdown();
  });
});

describe('encryption at rest', () => {
  it('the file holds neither secret key values, nor private keys, nor PINs', async () => {
    const { hsm, slot } = await readyHsm(home);
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    // A generated secret key made readable so the test knows its value.
    const aes = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [
      { type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true },
    ]);
    const aesValue = (await app.C_GetAttributeValue(s, aes, [{ type: CKA.VALUE }])).attributes[0]!.value as Buffer;
    // An imported private key whose PKCS#8 and scalar the test knows.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pkcs8 = ec.privateKey.export({ format: 'der', type: 'pkcs8' });
    const d = Buffer.from(ec.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC }, { type: CKA.TOKEN, value: true },
      { type: CKA.EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: CKA.VALUE, value: d },
    ]);
    // A private data object's value.
    const secretNote = Buffer.from('a private note that must not be on disk in clear');
    await app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.VALUE, value: secretNote }]);

    for (const bytes of [storeBytes(), (hsm.close(), storeBytes())]) {
      expect(bytes.includes(aesValue)).toBe(false);
      expect(bytes.includes(pkcs8)).toBe(false);
      expect(bytes.includes(d)).toBe(false);
      expect(bytes.includes(secretNote)).toBe(false);
      for (const pin of [SO_PIN, CO_PIN, CU_PIN]) expect(bytes.includes(Buffer.from(pin))).toBe(false);
    }
  });

  it('a wrong PIN does not unlock the partition key; the right one opens every sealed object', async () => {
    const { hsm, slot } = await readyHsm(home);
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }]);
    hsm.close();

    const store = HsmStore.open(storePath(home));
    try {
      const [partition] = store.partitions();
      const co = partition!.credentials.co!;
      const aad = credentialAad(partition!.id, 'co');
      expect(await openCredential(Buffer.from('co-secret-2'), co, aad)).toBeNull();
      expect(await openCredential(Buffer.from(SO_PIN), co, aad)).toBeNull();
      const key = await openCredential(Buffer.from(CO_PIN), co, aad);
      expect(key?.length).toBe(32);
      // the SO's copy wraps the same partition key
      const soKey = await openCredential(Buffer.from(SO_PIN), partition!.credentials.so!, credentialAad(partition!.id, 'so'));
      expect(soKey).toEqual(key);
      const sealed = store.objects().filter((o) => o.sealed !== null);
      expect(sealed.length).toBe(1);
      for (const o of sealed) {
        expect(unseal(key!, o.sealed!, objectAad(o.partitionId, o.id))?.length).toBe(16);
        // a sealed value moved to another row does not open
        expect(unseal(key!, o.sealed!, objectAad(o.partitionId, o.id + 1))).toBeNull();
      }
    } finally {
      store.close();
    }
  });

  it('the default KDF is scrypt with N = 2^15 and is what a default HSM stores', async () => {
    expect(DEFAULT_KDF.cost).toBeGreaterThanOrEqual(1 << 15);
    const hsm = await SoftwareHsm.open({ home, mechanisms: softwareMechanisms });
    await hsm.createPartition({ label: 'real', soPin: SO_PIN });
    hsm.close();
    const store = HsmStore.open(storePath(home));
    try {
      const so = store.partitions()[0]!.credentials.so!;
      expect([so.kdf, so.cost, so.blockSize, so.parallelization]).toEqual(['scrypt', 1 << 15, 8, 1]);
      expect(so.salt.length).toBe(16);
    } finally {
      store.close();
    }
  });
});
