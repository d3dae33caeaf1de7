// CMAC over AES and triple DES: the published examples (RFC 4493, SP 800-38B), any split of the
// input into updates, the _GENERAL lengths, and what bad input gets.

import { describe, expect, it } from 'vitest';
import { CKK, CKM, CKR } from '../../../src/pkcs11/constants.js';
import { aes, bytes, hex, mech, mechanisms, rvOf, secret, sign, verify } from './run.js';

const aes128 = aes('2b7e151628aed2a6abf7158809cf4f3c');
const aes256 = aes('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
const des3 = secret(CKK.DES3, hex('8aa83bf8cbda1062 0bc1bf19fbb6cd58 bc313d4a371ca8b5'));
const message = hex('6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710');
const general = (length: number) => bytes(Buffer.from(new BigUint64Array([BigInt(length)]).buffer));

describe('CKM_AES_CMAC and CKM_DES3_CMAC', () => {
  it('gives the published examples', async () => {
    const cases: Array<[number, ReturnType<typeof aes>, number, string]> = [
      [CKM.AES_CMAC, aes128, 0, 'bb1d6929e95937287fa37d129b756746'],
      [CKM.AES_CMAC, aes128, 16, '070a16b46b4d4144f79bdd9dd04a287c'],
      [CKM.AES_CMAC, aes128, 40, 'dfa66747de9ae63030ca32611497c827'],
      [CKM.AES_CMAC, aes128, 64, '51f0bebf7e3b9d92fc49741779363cfe'],
      [CKM.AES_CMAC, aes256, 0, '028962f61b7bf89efc6b551f4667d983'],
      [CKM.AES_CMAC, aes256, 64, 'e1992190549f6ed5696a2c056c315410'],
      [CKM.DES3_CMAC, des3, 0, 'b7a688e122ffaf95'],
      [CKM.DES3_CMAC, des3, 20, '743ddbe0ce2dc2ed'],
    ];
    for (const [type, key, length, expected] of cases) {
      const data = message.subarray(0, length);
      expect([type, length, (await sign(mech(type), key, data)).toString('hex')]).toEqual([type, length, expected]);
      expect(await verify(mech(type), key, hex(expected), data)).toBe(true);
    }
  });

  it('gives the same MAC however the message is split into updates', async () => {
    const whole = await sign(mech(CKM.AES_CMAC), aes128, message);
    for (const cut of [1, 15, 16, 17, 32, 63]) {
      expect([cut, await sign(mech(CKM.AES_CMAC), aes128, message.subarray(0, cut), Buffer.alloc(0), message.subarray(cut))]).toEqual([cut, whole]);
    }
    const bytewise = [...message].map((b) => Buffer.from([b]));
    expect(await sign(mech(CKM.AES_CMAC), aes128, ...bytewise)).toEqual(whole);
  });

  it('_GENERAL gives the first 1 to block bytes', async () => {
    const whole = await sign(mech(CKM.AES_CMAC), aes128, message);
    expect(await sign(mech(CKM.AES_CMAC_GENERAL, general(8)), aes128, message)).toEqual(whole.subarray(0, 8));
    expect(await verify(mech(CKM.AES_CMAC_GENERAL, general(4)), aes128, whole.subarray(0, 4), message)).toBe(true);
    expect(await sign(mech(CKM.DES3_CMAC_GENERAL, general(8)), des3, message.subarray(0, 20))).toEqual(hex('743ddbe0ce2dc2ed'));
  });

  it('refuses what does not fit', async () => {
    const flipped = await sign(mech(CKM.AES_CMAC), aes128, message);
    flipped[0] = flipped[0]! ^ 1;
    expect(await verify(mech(CKM.AES_CMAC), aes128, flipped, message)).toBe(false);
    expect(await rvOf(() => verify(mech(CKM.AES_CMAC), aes128, Buffer.alloc(15), message))).toBe(CKR.SIGNATURE_LEN_RANGE);
    expect(await rvOf(() => verify(mech(CKM.AES_CMAC_GENERAL, general(8)), aes128, Buffer.alloc(16), message))).toBe(CKR.SIGNATURE_LEN_RANGE);
    for (const parameter of [general(0), general(17), bytes(Buffer.alloc(3)), null]) {
      expect(await rvOf(() => mechanisms.sign(mech(CKM.AES_CMAC_GENERAL, parameter), aes128))).toBe(CKR.MECHANISM_PARAM_INVALID);
    }
    expect(await rvOf(() => mechanisms.sign(mech(CKM.DES3_CMAC_GENERAL, general(9)), des3))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.AES_CMAC, general(8)), aes128))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.AES_CMAC), des3))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.DES3_CMAC), aes128))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.AES_CMAC), aes(Buffer.alloc(20))))).toBe(CKR.KEY_SIZE_RANGE);
  });

  it('is listed for signing and verifying only, with the key sizes in bytes', () => {
    const listed = mechanisms.list().filter((m) => [CKM.AES_CMAC, CKM.AES_CMAC_GENERAL, CKM.DES3_CMAC, CKM.DES3_CMAC_GENERAL].includes(m.type as never));
    expect(listed.map((m) => [m.type, m.minKeySize, m.maxKeySize])).toEqual([
      [CKM.DES3_CMAC_GENERAL, 24, 24], [CKM.DES3_CMAC, 24, 24], [CKM.AES_CMAC, 16, 32], [CKM.AES_CMAC_GENERAL, 16, 32],
    ]);
  });
});
