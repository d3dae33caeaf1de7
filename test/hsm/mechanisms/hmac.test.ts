// HMAC over the key types made for it and generic secrets: RFC 4231's examples, the _GENERAL
// lengths, and what a key of another hash or a bad length gets.

import { describe, expect, it } from 'vitest';
import { CKK, CKM, CKR } from '../../../src/pkcs11/constants.js';
import { bytes, hex, mech, mechanisms, rvOf, secret, sign, verify } from './run.js';

const general = (length: number) => bytes(Buffer.from(new BigUint64Array([BigInt(length)]).buffer));
// RFC 4231, test case 2.
const key = Buffer.from('Jefe');
const data = Buffer.from('what do ya want for nothing?');
const expected: Array<[number, number, number, number, string]> = [
  [CKM.SHA224_HMAC, CKM.SHA224_HMAC_GENERAL, CKK.SHA224_HMAC, 28, 'a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44'],
  [CKM.SHA256_HMAC, CKM.SHA256_HMAC_GENERAL, CKK.SHA256_HMAC, 32, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  [CKM.SHA384_HMAC, CKM.SHA384_HMAC_GENERAL, CKK.SHA384_HMAC, 48,
    'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649'],
  [CKM.SHA512_HMAC, CKM.SHA512_HMAC_GENERAL, CKK.SHA512_HMAC, 64,
    '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
  [CKM.SHA_1_HMAC, CKM.SHA_1_HMAC_GENERAL, CKK.SHA_1_HMAC, 20, 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79'],
];

describe('HMAC', () => {
  it('gives RFC 4231 examples with its own key type and with a generic secret', async () => {
    for (const [type, , keyType, , mac] of expected) {
      for (const k of [secret(keyType, key), secret(CKK.GENERIC_SECRET, key)]) {
        expect([type, k.keyType, (await sign(mech(type), k, data)).toString('hex')]).toEqual([type, k.keyType, mac]);
        expect(await verify(mech(type), k, hex(mac), data)).toBe(true);
      }
    }
  });

  it('_GENERAL gives the first 1 to hash-length bytes', async () => {
    for (const [, generalType, keyType, length, mac] of expected) {
      const k = secret(keyType, key);
      for (const n of [1, 10, length]) {
        expect(await sign(mech(generalType, general(n)), k, data)).toEqual(hex(mac).subarray(0, n));
        expect(await verify(mech(generalType, general(n)), k, hex(mac).subarray(0, n), data)).toBe(true);
      }
      for (const parameter of [general(0), general(length + 1), bytes(Buffer.alloc(3)), null]) {
        expect(await rvOf(() => mechanisms.sign(mech(generalType, parameter), k))).toBe(CKR.MECHANISM_PARAM_INVALID);
      }
    }
  });

  it('refuses a key made for another hash, and a MAC of the wrong length', async () => {
    expect(await rvOf(() => mechanisms.sign(mech(CKM.SHA256_HMAC), secret(CKK.SHA384_HMAC, key)))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.verify(mech(CKM.SHA_1_HMAC), secret(CKK.SHA256_HMAC, key)))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => verify(mech(CKM.SHA256_HMAC_GENERAL, general(16)), secret(CKK.SHA256_HMAC, key), Buffer.alloc(32), data)))
      .toBe(CKR.SIGNATURE_LEN_RANGE);
    expect(await verify(mech(CKM.SHA256_HMAC_GENERAL, general(16)), secret(CKK.SHA256_HMAC, key), Buffer.alloc(16), data)).toBe(false);
  });
});
