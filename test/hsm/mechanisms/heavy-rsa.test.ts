// Imported RSA keys above 4096 bits take turns on a thread of their own: signing with one on many
// links (an RSA-16384 signature is about 300 ms of a core) no longer holds up other keys' RSA
// operations, which before queued behind it on the libuv pool (hashed mechanisms) or the RSA
// worker threads (raw ones). The fixture is a key made for this test only.
import { describe, expect, it } from 'vitest';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify as nodeVerify, constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CKG, CKK, CKM, CKO } from '../../../src/pkcs11/constants.js';
import type { KeyMaterial } from '../../../src/hsm/mechanisms/contract.js';
import { mech, sign } from './run.js';

const heavyPem = readFileSync(new URL('../../fixtures/rsa-16384-test-key.pem', import.meta.url));
const material = (der: Buffer): KeyMaterial => ({ objectClass: CKO.PRIVATE_KEY, keyType: CKK.RSA, der });
const heavy = material(createPrivateKey(heavyPem).export({ format: 'der', type: 'pkcs8' }));
const light = material(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'der', type: 'pkcs8' }));
const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), Buffer.alloc(32, 1)]);

/** How many of the heavy signatures had finished when the light one did. */
async function heavyDoneBeforeLight(mechanism: number, data: Buffer): Promise<number> {
  let heavyDone = 0;
  const heavies = Array.from({ length: 6 }, () => sign(mech(mechanism), heavy, data).then(() => { heavyDone++; }));
  await sign(mech(mechanism), light, data);
  const seen = heavyDone;
  await Promise.all(heavies);
  return seen;
}

describe('heavy RSA keys', () => {
  it('six RSA-16384 CKM_SHA256_RSA_PKCS signatures in flight: an RSA-2048 one finishes first (it waited behind three on the libuv pool)', async () => {
    expect(await heavyDoneBeforeLight(CKM.SHA256_RSA_PKCS, Buffer.from('message'))).toBeLessThanOrEqual(1);
  }, 60_000);

  it('the same for raw CKM_RSA_PKCS (it waited behind three on the RSA worker threads)', async () => {
    expect(await heavyDoneBeforeLight(CKM.RSA_PKCS, digestInfo)).toBeLessThanOrEqual(1);
  }, 60_000);

  it('a heavy key\'s hashed signatures, now digested first and signed on its thread, verify', async () => {
    const publicKey = createPublicKey(heavyPem);
    const message = Buffer.from('signed by a heavy key');
    const pkcs1 = await sign(mech(CKM.SHA256_RSA_PKCS), heavy, message);
    expect(nodeVerify('sha256', message, publicKey, pkcs1)).toBe(true);
    const pss = await sign(mech(CKM.SHA256_RSA_PKCS_PSS, { kind: 'pss', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 }), heavy, message);
    expect(nodeVerify('sha256', message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pss)).toBe(true);
  }, 60_000);
});
