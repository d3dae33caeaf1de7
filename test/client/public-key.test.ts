// A public key from a token's attributes when it has no CKA_PUBLIC_KEY_INFO (a module behind the
// passthrough), and the default CKA_ID of a generated pair: the key identifier OpenSSL puts in
// the certificates it makes for that key.
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLIC_KEY_ATTRIBUTES, keyIdOf, publicKeyOf } from '../../src/client/public-key.js';
import type { AttributeRead } from '../../src/client/template.js';
import { CKA, CKK, CKR } from '../../src/pkcs11/constants.js';
import { octetString } from '../../src/pkcs11/der.js';

const work = mkdtempSync(join(tmpdir(), 'ntls-public-key-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** What C_GetAttributeValue gives for PUBLIC_KEY_ATTRIBUTES, with no CKA_PUBLIC_KEY_INFO. */
function reads(values: Partial<Record<number, Buffer | number>>): AttributeRead[] {
  return PUBLIC_KEY_ATTRIBUTES.map((type) => ({ type, value: values[type] ?? null }));
}

const spki = (key: KeyObject) => key.export({ format: 'der', type: 'spki' });
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const SECP256K1 = Buffer.from('06052b8104000a', 'hex');

describe('publicKeyOf', () => {
  it('builds RSA, EC (named curves beyond JWK\'s) and Ed25519 public keys from their components', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const jwk = rsa.export({ format: 'jwk' });
    const fromRsa = publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.RSA, [CKA.MODULUS]: Buffer.from(jwk.n!, 'base64url'), [CKA.PUBLIC_EXPONENT]: Buffer.from(jwk.e!, 'base64url') }));
    expect(spki(fromRsa)).toEqual(spki(rsa));

    for (const [curve, params] of [['prime256v1', P256], ['secp256k1', SECP256K1]] as const) {
      const ec = generateKeyPairSync('ec', { namedCurve: curve }).publicKey;
      const point = spki(ec).subarray(-65);
      expect(spki(publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.EC, [CKA.EC_PARAMS]: params, [CKA.EC_POINT]: octetString(point) })))).toEqual(spki(ec));
      // Some tokens give the bare point.
      expect(spki(publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.EC, [CKA.EC_PARAMS]: params, [CKA.EC_POINT]: point })))).toEqual(spki(ec));
    }

    const ed = generateKeyPairSync('ed25519').publicKey;
    const edPoint = Buffer.from(ed.export({ format: 'jwk' }).x!, 'base64url');
    expect(spki(publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.EC_EDWARDS, [CKA.EC_POINT]: octetString(edPoint) })))).toEqual(spki(ed));
  });

  it('takes CKA_PUBLIC_KEY_INFO first; without it or the components, CKR_ATTRIBUTE_TYPE_INVALID; bad components, CKR_ATTRIBUTE_VALUE_INVALID', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const withInfo = reads({ [CKA.KEY_TYPE]: CKK.RSA });
    withInfo[0] = { type: CKA.PUBLIC_KEY_INFO, value: spki(ec) };
    expect(spki(publicKeyOf(withInfo))).toEqual(spki(ec));
    expect(() => publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.AES }))).toThrow(expect.objectContaining({ rv: CKR.ATTRIBUTE_TYPE_INVALID }));
    const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]);
    expect(() => publicKeyOf(reads({ [CKA.KEY_TYPE]: CKK.EC, [CKA.EC_PARAMS]: P256, [CKA.EC_POINT]: octetString(offCurve) })))
      .toThrow(expect.objectContaining({ rv: CKR.ATTRIBUTE_VALUE_INVALID }));
  });
});

describe('keyIdOf', () => {
  it('is the subjectKeyIdentifier `openssl req -x509` writes for the key (EC, RSA, Ed25519)', () => {
    const pairs = [generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('ed25519')];
    for (const [i, pair] of pairs.entries()) {
      const keyFile = join(work, `key${i}.pem`);
      writeFileSync(keyFile, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
      const made = spawnSync('openssl', ['req', '-x509', '-key', keyFile, '-subj', '/CN=id', '-out', join(work, `cert${i}.pem`)], { encoding: 'utf8', timeout: 20_000 });
      expect(made.status, made.stderr).toBe(0);
      const ski = spawnSync('openssl', ['x509', '-in', join(work, `cert${i}.pem`), '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8', timeout: 20_000 });
      const fromOpenssl = ski.stdout.split('\n')[1]!.trim().replaceAll(':', '').toLowerCase();
      expect(fromOpenssl).toMatch(/^[0-9a-f]{40}$/);
      expect(keyIdOf(createPublicKey(pair.privateKey)).toString('hex')).toBe(fromOpenssl);
    }
  });
});
