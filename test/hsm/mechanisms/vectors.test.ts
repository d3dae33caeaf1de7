// Published test vectors: NIST SP 800-38A (AES modes), the GCM specification's test cases,
// RFC 3394 / RFC 5649 (key wrap), RFC 4231 / RFC 2202 (HMAC), FIPS 180 (SHA), RFC 8032 (Ed25519),
// NIST CAVS 11.0 SigVer PKCS#1 v1.5 (RSA, mod 1024, SHA-256).

import { describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { CKK, CKM, CKO } from '../../../src/pkcs11/constants.js';
import { ed25519PrivateKeyDer, rsaPublicKeyDer } from '../../../src/hsm/mechanisms/index.js';
import { aes, bytes, decrypt, digest, encrypt, hex, mech, secret, sign, verify } from './run.js';

const SP800_38A_PLAIN = hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
  30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);
const KEY128 = '2b7e151628aed2a6abf7158809cf4f3c';
const KEY256 = '603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4';
const CBC_IV = hex('000102030405060708090a0b0c0d0e0f');
const CTR_BLOCK = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');

describe('AES, NIST SP 800-38A', () => {
  const cases: Array<[string, number, string, ReturnType<typeof mech>, string]> = [
    ['F.1.1 ECB-AES128', CKM.AES_ECB, KEY128, mech(CKM.AES_ECB),
      '3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf 43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4'],
    ['F.1.5 ECB-AES256', CKM.AES_ECB, KEY256, mech(CKM.AES_ECB),
      'f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870 b6ed21b99ca6f4f9f153e7b1beafed1d 23304b7a39f9f3ff067d8d8f9e24ecc7'],
    ['F.2.1 CBC-AES128', CKM.AES_CBC, KEY128, mech(CKM.AES_CBC, bytes(CBC_IV)),
      '7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7'],
    ['F.2.5 CBC-AES256', CKM.AES_CBC, KEY256, mech(CKM.AES_CBC, bytes(CBC_IV)),
      'f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b'],
    ['F.5.1 CTR-AES128', CKM.AES_CTR, KEY128, mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 128, counterBlock: CTR_BLOCK }),
      '874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff 5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee'],
    ['F.5.5 CTR-AES256', CKM.AES_CTR, KEY256, mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 128, counterBlock: CTR_BLOCK }),
      '601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5 2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6'],
  ];
  for (const [name, , key, mechanism, expected] of cases) {
    it(`${name} encrypts and decrypts, single- and multi-part`, async () => {
      expect(await encrypt(mechanism, aes(key), SP800_38A_PLAIN)).toEqual(hex(expected));
      // Odd split points: partial blocks are held between updates.
      const c = hex(expected);
      expect(await encrypt(mechanism, aes(key), SP800_38A_PLAIN.subarray(0, 5), SP800_38A_PLAIN.subarray(5, 37), SP800_38A_PLAIN.subarray(37))).toEqual(c);
      expect(await decrypt(mechanism, aes(key), c.subarray(0, 17), c.subarray(17))).toEqual(SP800_38A_PLAIN);
    });
  }
});

describe('AES-GCM, McGrew & Viega test cases', () => {
  const P = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255`);
  const IV = hex('cafebabefacedbaddecaf888');
  const A = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
  const cases = [
    { name: 'Test Case 2', key: '00000000000000000000000000000000', iv: hex('000000000000000000000000'), aad: Buffer.alloc(0),
      p: hex('00000000000000000000000000000000'), c: '0388dace60b6a392f328c2b971b2fe78', t: 'ab6e47d42cec13bdf53a67b21257bddf' },
    { name: 'Test Case 3', key: 'feffe9928665731c6d6a8f9467308308', iv: IV, aad: Buffer.alloc(0), p: P,
      c: `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
          21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985`, t: '4d5c2af327cd64a62cf35abd2ba6fab4' },
    { name: 'Test Case 4', key: 'feffe9928665731c6d6a8f9467308308', iv: IV, aad: A, p: P.subarray(0, 60),
      c: `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
          21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091`, t: '5bc94fbc3221a5db94fae95ae7121a47' },
    { name: 'Test Case 16', key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', iv: IV, aad: A, p: P.subarray(0, 60),
      c: `522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
          8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662`, t: '76fc6ece0f4e1768cddf8853bb2d551b' },
  ];
  for (const test of cases) {
    it(`${test.name}`, async () => {
      const mechanism = mech(CKM.AES_GCM, { kind: 'gcm', iv: test.iv, aad: test.aad, tagBits: 128 });
      const sealed = Buffer.concat([hex(test.c), hex(test.t)]);
      expect(await encrypt(mechanism, aes(test.key), test.p.subarray(0, 7), test.p.subarray(7))).toEqual(sealed);
      expect(await decrypt(mechanism, aes(test.key), sealed.subarray(0, 30), sealed.subarray(30))).toEqual(test.p);
    });
  }
  it('a truncated 96-bit tag is the leading bytes of the full one', async () => {
    const mechanism = mech(CKM.AES_GCM, { kind: 'gcm', iv: IV, aad: A, tagBits: 96 });
    const out = await encrypt(mechanism, aes('feffe9928665731c6d6a8f9467308308'), P.subarray(0, 60));
    expect(out.subarray(60)).toEqual(hex('5bc94fbc3221a5db94fae95a'));
  });
});

describe('AES key wrap, RFC 3394 and RFC 5649', () => {
  it('RFC 3394 4.1: 128-bit key data with a 128-bit KEK', async () => {
    const kek = aes('000102030405060708090a0b0c0d0e0f');
    const key = hex('00112233445566778899aabbccddeeff');
    const wrapped = hex('1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5');
    expect(await encrypt(mech(CKM.AES_KEY_WRAP), kek, key)).toEqual(wrapped);
    expect(await decrypt(mech(CKM.AES_KEY_WRAP), kek, wrapped)).toEqual(key);
  });
  it('RFC 3394 4.6: 256-bit key data with a 256-bit KEK, through C_WrapKey/C_UnwrapKey', async () => {
    const { mechanisms } = await import('./run.js');
    const kek = aes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const key = aes('00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f');
    const wrapped = hex('28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21');
    expect(await mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), kek, key)).toEqual(wrapped);
    const unwrapped = await mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP), kek, wrapped, CKO.SECRET_KEY, CKK.AES);
    expect(unwrapped.der).toEqual(key.der);
  });
  const kek5649 = aes('5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8');
  for (const type of [CKM.AES_KEY_WRAP_PAD, CKM.AES_KEY_WRAP_KWP]) {
    it(`RFC 5649 section 6, 20 and 7 octets (CKM 0x${type.toString(16)})`, async () => {
      const k20 = hex('c37b7e6492584340bed12207808941155068f738');
      const w20 = hex('138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a');
      const k7 = hex('466f7250617369');
      const w7 = hex('afbeb0f07dfbf5419200f2ccb50bb24f');
      expect(await encrypt(mech(type), kek5649, k20)).toEqual(w20);
      expect(await decrypt(mech(type), kek5649, w20)).toEqual(k20);
      expect(await encrypt(mech(type), kek5649, k7)).toEqual(w7);
      expect(await decrypt(mech(type), kek5649, w7)).toEqual(k7);
    });
  }
});

describe('HMAC, RFC 4231 and RFC 2202', () => {
  const tc1 = { key: Buffer.alloc(20, 0x0b), data: Buffer.from('Hi There') };
  const tc2 = { key: Buffer.from('Jefe'), data: Buffer.from('what do ya want for nothing?') };
  const cases: Array<[string, number, typeof tc1, string]> = [
    ['RFC 2202 1, SHA-1', CKM.SHA_1_HMAC, tc1, 'b617318655057264e28bc0b6fb378c8ef146be00'],
    ['4231 1, SHA-224', CKM.SHA224_HMAC, tc1, '896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22'],
    ['4231 1, SHA-256', CKM.SHA256_HMAC, tc1, 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['4231 1, SHA-384', CKM.SHA384_HMAC, tc1, 'afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6'],
    ['4231 1, SHA-512', CKM.SHA512_HMAC, tc1, '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
    ['4231 2, SHA-224', CKM.SHA224_HMAC, tc2, 'a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44'],
    ['4231 2, SHA-256', CKM.SHA256_HMAC, tc2, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    ['4231 2, SHA-384', CKM.SHA384_HMAC, tc2, 'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649'],
    ['4231 2, SHA-512', CKM.SHA512_HMAC, tc2, '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
  ];
  for (const [name, type, input, mac] of cases) {
    it(name, async () => {
      const key = secret(CKK.GENERIC_SECRET, input.key);
      expect(await sign(mech(type), key, input.data.subarray(0, 3), input.data.subarray(3))).toEqual(hex(mac));
      expect(await verify(mech(type), key, hex(mac), input.data)).toBe(true);
      const wrong = hex(mac);
      wrong[0] = wrong[0]! ^ 1;
      expect(await verify(mech(type), key, wrong, input.data)).toBe(false);
    });
  }
});

describe('SHA, FIPS 180-4 examples', () => {
  const abc = Buffer.from('abc');
  const long = Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
  const cases: Array<[string, number, Buffer, string]> = [
    ['SHA-1 abc', CKM.SHA_1, abc, 'a9993e364706816aba3e25717850c26c9cd0d89d'],
    ['SHA-1 448 bits', CKM.SHA_1, long, '84983e441c3bd26ebaae4aa1f95129e5e54670f1'],
    ['SHA-224 abc', CKM.SHA224, abc, '23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7'],
    ['SHA-256 abc', CKM.SHA256, abc, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ['SHA-256 448 bits', CKM.SHA256, long, '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
    ['SHA-384 abc', CKM.SHA384, abc, 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7'],
    ['SHA-512 abc', CKM.SHA512, abc, 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'],
  ];
  for (const [name, type, input, expected] of cases) {
    it(name, async () => {
      expect(await digest(mech(type), input)).toEqual(hex(expected));
      expect(await digest(mech(type), input.subarray(0, 1), input.subarray(1))).toEqual(hex(expected));
    });
  }
});

describe('Ed25519, RFC 8032 section 7.1', () => {
  const cases = [
    { name: 'TEST 1', seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', msg: '',
      sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b' },
    { name: 'TEST 2', seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
      pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', msg: '72',
      sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00' },
  ];
  for (const test of cases) {
    it(`${test.name} signs to the published signature and verifies`, async () => {
      const privateDer = ed25519PrivateKeyDer(hex(test.seed));
      const privateKey = { objectClass: CKO.PRIVATE_KEY, keyType: CKK.EC_EDWARDS, der: privateDer };
      const publicDer = createPublicKey(createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
      expect(publicDer.subarray(publicDer.length - 32)).toEqual(hex(test.pub));
      const publicKey = { objectClass: CKO.PUBLIC_KEY, keyType: CKK.EC_EDWARDS, der: publicDer };
      expect(await sign(mech(CKM.EDDSA), privateKey, hex(test.msg))).toEqual(hex(test.sig));
      expect(await verify(mech(CKM.EDDSA), publicKey, hex(test.sig), hex(test.msg))).toBe(true);
    });
  }
});

describe('RSA PKCS#1 v1.5, NIST CAVS 11.0 SigVer (mod = 1024, SHA-256)', () => {
  const n = hex(`8592b5850b9ba96e7faecbdd67e50ed5fb2018fda0bc6a09ab6345910fc445ac6bdb0e7a4c6b72c9441649c9e78109bb
    aa1d79f9fafb8794a1a06cb638bd8f3c3416d44c43cf862b8ac1d5006310b05a7760d341d07077ae775f1695061d3c7297dd3ab8fc5d03d0
    9ed1602a1bb69891bb377fd0aad6cd90f8b207467db36279`);
  const publicKey = { objectClass: CKO.PUBLIC_KEY, keyType: CKK.RSA, der: rsaPublicKeyDer(n, hex('eef211')) };
  const cases = [
    { result: true,
      msg: `1e422f898ff258a99bc53648541709b3a3bba5828d36d070b42bec6a2117d6e6403f0d762ce6179d2dc220e180b1e52156a9d0291eed6484
        0787dc91c1f20fda841797a0547b32bb83b668a177276fc4aee64b21fefa391522cc4e7372dc5cd5f2b3152f8e1973aaa48757afc3df7041b3
        5b5e91b5c317cc0be48a38bb3d837f`,
      sig: `2e37c8221597f7e2b1970c40a50db5fefde31b1dff1e9b9d6a70b023acb014971580eddf1d67f15d9fbbddfcdf49cda14ccb7516c33b787a
        3a3fd43d005d02de10f93ffc99585ae5dfaa766c0f1f5bfa62e50e76a059a4a1e814c1ee9836e01595731dce48f94aa1ae36d9c5165a3eb280
        13fac271e091f7018fe96ec26009c1` },
    { result: false,
      msg: `23d29062797ec367d664542872324b63a72305caed23d04b0834b594801095d7521078cae54c21f33f04e622793fbe3f70b19c45bee2fb8f
        e98dba53d9462b6c9060675c150ee491b1c849e75ef1806f7db60d6fc7399fa986efe5e00546a399458c051ff10c33c9947a257f0a91b97b35
        fa034df170e4224922de45eb5826e6`,
      sig: `02d07177f91c0db0b74e34b532aa18673d27fdee370b7aa9094ef765c9a8278b7128f1bd24fd3992e6376f83bdea9e505be10de15163286a
        7c9d9873bdbcffe0535f9f8cb0dd99ba34e24ec462e4ad03618258b66894daeac9415545e030bd963f2beb8d089183ec7ff1be67e6f94e6871
        d42fb7d7c694682a9f4af599bfdf81` },
  ];
  for (const test of cases) {
    it(`Result = ${test.result ? 'P' : 'F'}, as SHA256_RSA_PKCS and as RSA_PKCS over the DigestInfo`, async () => {
      expect(await verify(mech(CKM.SHA256_RSA_PKCS), publicKey, hex(test.sig), hex(test.msg))).toBe(test.result);
      const digestInfo = Buffer.concat([hex('3031300d060960864801650304020105000420'), createHash('sha256').update(hex(test.msg)).digest()]);
      expect(await verify(mech(CKM.RSA_PKCS), publicKey, hex(test.sig), digestInfo)).toBe(test.result);
    });
  }
});
