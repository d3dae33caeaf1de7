// Cross-checks with the openssl CLI: what we sign, openssl verifies; what openssl signs or
// encrypts, we verify or decrypt; symmetric results are byte-identical.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { ecPrivateKeyDer, ecPublicKeyDer } from '../../../src/hsm/mechanisms/key-import.js';
import { CKD, CKG, CKK, CKM, CKZ } from '../../../src/pkcs11/constants.js';
import type { GeneratedKeyPair } from '../../../src/hsm/mechanisms/contract.js';
import { readElement, readOctetString } from '../../../src/pkcs11/der.js';
import { BRAINPOOL_P256R1, BRAINPOOL_P384R1, BRAINPOOL_P512R1, P224, P256, P384, P521, SECP256K1 } from '../../../src/hsm/mechanisms/curves.js';
import { aes, bytes, decrypt, encrypt, hex, mech, mechanisms, secret, sign, verify } from './run.js';
import { derToRawSignature, opensslOk, openssl, rawToDerSignature, Scratch } from './openssl-cli.js';

let scratch: Scratch;
let rsa: GeneratedKeyPair;
const ec = new Map<string, GeneratedKeyPair>();
let ed: GeneratedKeyPair;
const message = Buffer.from('The quick brown fox jumps over the lazy dog, twice over for good measure.');

beforeAll(async () => {
  scratch = await Scratch.create();
  [rsa, ed] = await Promise.all([
    mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 2048 }),
    mechanisms.generateKeyPair(mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), { ecParams: hex('130c6564776172647332353531 39') }),
  ]);
  for (const curve of [P224, P256, P384, P521, SECP256K1, BRAINPOOL_P256R1, BRAINPOOL_P384R1, BRAINPOOL_P512R1]) {
    ec.set(curve.name, await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params }));
  }
  await scratch.writeKey('rsa.pem', rsa.privateKey);
  await scratch.writeKey('rsa-pub.pem', rsa.publicKey);
  await scratch.writeKey('ed.pem', ed.privateKey);
  await scratch.writeKey('ed-pub.pem', ed.publicKey);
  for (const [name, pair] of ec) {
    await scratch.writeKey(`${name}.pem`, pair.privateKey);
    await scratch.writeKey(`${name}-pub.pem`, pair.publicKey);
  }
  await scratch.write('msg', message);
});

afterAll(() => scratch.remove());

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
const DIGEST_INFO_SHA256 = hex('3031300d060960864801650304020105000420');

describe('RSA PKCS#1 v1.5 signatures', () => {
  it('SHA256_RSA_PKCS made here verifies with openssl dgst', async () => {
    const signature = await sign(mech(CKM.SHA256_RSA_PKCS), rsa.privateKey, message.subarray(0, 10), message.subarray(10));
    const sig = await scratch.write('rsa.sig', signature);
    await opensslOk(['dgst', '-sha256', '-verify', scratch.path('rsa-pub.pem'), '-signature', sig, scratch.path('msg')]);
  });

  it('RSA_PKCS over a DigestInfo made here is what openssl pkeyutl recovers', async () => {
    const digestInfo = Buffer.concat([DIGEST_INFO_SHA256, sha256(message)]);
    const signature = await sign(mech(CKM.RSA_PKCS), rsa.privateKey, digestInfo);
    const sig = await scratch.write('rsa-raw.sig', signature);
    const recovered = await opensslOk(['pkeyutl', '-verifyrecover', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', sig]);
    expect(recovered).toEqual(digestInfo);
    const hash = await scratch.write('msg.sha256', sha256(message));
    await opensslOk(['pkeyutl', '-verify', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-pkeyopt', 'digest:sha256', '-in', hash, '-sigfile', sig]);
    // Deterministic padding: the one-shot and the raw path give the same bytes.
    expect(await sign(mech(CKM.SHA256_RSA_PKCS), rsa.privateKey, message)).toEqual(signature);
  });

  it('openssl dgst -sign verifies here, as SHA256_RSA_PKCS and as RSA_PKCS', async () => {
    const signature = await opensslOk(['dgst', '-sha256', '-sign', scratch.path('rsa.pem'), scratch.path('msg')]);
    expect(await verify(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey, signature, message)).toBe(true);
    expect(await verify(mech(CKM.RSA_PKCS), rsa.publicKey, signature, Buffer.concat([DIGEST_INFO_SHA256, sha256(message)]))).toBe(true);
    expect(await verify(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey, signature, Buffer.from('other'))).toBe(false);
  });
});

describe('RSA PSS', () => {
  const pss = (type: number, hashAlg: number, mgf: number, saltLength: number) => mech(type, { kind: 'pss', hashAlg, mgf, saltLength });

  it('SHA256_RSA_PKCS_PSS made here verifies with openssl dgst', async () => {
    const signature = await sign(pss(CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256, CKG.MGF1_SHA256, 32), rsa.privateKey, message);
    const sig = await scratch.write('pss.sig', signature);
    await opensslOk(['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32',
      '-verify', scratch.path('rsa-pub.pem'), '-signature', sig, scratch.path('msg')]);
  });

  it('RSA_PKCS_PSS over a hash (MGF1-SHA1, salt 20) verifies with openssl pkeyutl', async () => {
    const hash = sha256(message);
    const signature = await sign(pss(CKM.RSA_PKCS_PSS, CKM.SHA256, CKG.MGF1_SHA1, 20), rsa.privateKey, hash);
    const sig = await scratch.write('pss-raw.sig', signature);
    const hashFile = await scratch.write('pss.hash', hash);
    await opensslOk(['pkeyutl', '-verify', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', hashFile, '-sigfile', sig,
      '-pkeyopt', 'rsa_padding_mode:pss', '-pkeyopt', 'digest:sha256', '-pkeyopt', 'rsa_mgf1_md:sha1', '-pkeyopt', 'rsa_pss_saltlen:20']);
  });

  it('openssl PSS signatures verify here, raw and hashed, and fail with the wrong salt length', async () => {
    const hashFile = await scratch.write('pss2.hash', createHash('sha384').update(message).digest());
    const signature = await opensslOk(['pkeyutl', '-sign', '-inkey', scratch.path('rsa.pem'), '-in', hashFile,
      '-pkeyopt', 'rsa_padding_mode:pss', '-pkeyopt', 'digest:sha384', '-pkeyopt', 'rsa_pss_saltlen:48']);
    const hash = createHash('sha384').update(message).digest();
    expect(await verify(pss(CKM.RSA_PKCS_PSS, CKM.SHA384, CKG.MGF1_SHA384, 48), rsa.publicKey, signature, hash)).toBe(true);
    expect(await verify(pss(CKM.SHA384_RSA_PKCS_PSS, CKM.SHA384, CKG.MGF1_SHA384, 48), rsa.publicKey, signature, message)).toBe(true);
    expect(await verify(pss(CKM.RSA_PKCS_PSS, CKM.SHA384, CKG.MGF1_SHA384, 32), rsa.publicKey, signature, hash)).toBe(false);
  });
});

describe('RSA encryption', () => {
  it('OAEP (SHA-256, label) from openssl pkeyutl -encrypt decrypts here, and back', async () => {
    const plain = await scratch.write('oaep.txt', Buffer.from('a 32-byte AES key goes in here!!'));
    const label = Buffer.from('ntls-label');
    const ciphertext = await opensslOk(['pkeyutl', '-encrypt', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', plain,
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256',
      '-pkeyopt', `rsa_oaep_label:${label.toString('hex')}`]);
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: CKZ.DATA_SPECIFIED, sourceData: label });
    expect(await decrypt(oaep, rsa.privateKey, ciphertext)).toEqual(await scratch.read('oaep.txt'));

    const ours = await scratch.write('oaep.bin', await encrypt(oaep, rsa.publicKey, Buffer.from('the other way')));
    const back = await opensslOk(['pkeyutl', '-decrypt', '-inkey', scratch.path('rsa.pem'), '-in', ours,
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', `rsa_oaep_label:${label.toString('hex')}`]);
    expect(back.toString()).toBe('the other way');
  });

  it('OAEP SHA-256 with MGF1-SHA1 (Java\'s OAEPWithSHA-256AndMGF1Padding) both ways with openssl', async () => {
    const plain = await scratch.write('oaep-mixed.txt', Buffer.from('a 32-byte AES key goes in here!!'));
    const label = Buffer.from('mixed');
    const options = ['-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha1'];
    const ciphertext = await opensslOk(['pkeyutl', '-encrypt', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', plain, ...options,
      '-pkeyopt', `rsa_oaep_label:${label.toString('hex')}`]);
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA1, source: CKZ.DATA_SPECIFIED, sourceData: label });
    expect(await decrypt(oaep, rsa.privateKey, ciphertext)).toEqual(await scratch.read('oaep-mixed.txt'));

    const unlabelled = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA512, mgf: CKG.MGF1_SHA1, source: 0, sourceData: null });
    const ours = await scratch.write('oaep-mixed.bin', await encrypt(unlabelled, rsa.publicKey, Buffer.from('the other way')));
    const back = await opensslOk(['pkeyutl', '-decrypt', '-inkey', scratch.path('rsa.pem'), '-in', ours,
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha512', '-pkeyopt', 'rsa_mgf1_md:sha1']);
    expect(back.toString()).toBe('the other way');
  });

  it('OAEP SHA-1 without a label (openssl defaults) decrypts here', async () => {
    const plain = await scratch.write('oaep1.txt', 'sixteen byte key');
    const ciphertext = await opensslOk(['pkeyutl', '-encrypt', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', plain, '-pkeyopt', 'rsa_padding_mode:oaep']);
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA_1, mgf: CKG.MGF1_SHA1, source: 0, sourceData: null });
    expect((await decrypt(oaep, rsa.privateKey, ciphertext)).toString()).toBe('sixteen byte key');
  });

  it('PKCS#1 v1.5 from openssl decrypts here, and ours decrypts with openssl', async () => {
    const plain = await scratch.write('pkcs.txt', 'v1.5 padded secret');
    const ciphertext = await opensslOk(['pkeyutl', '-encrypt', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', plain]);
    expect((await decrypt(mech(CKM.RSA_PKCS), rsa.privateKey, ciphertext)).toString()).toBe('v1.5 padded secret');
    const ours = await scratch.write('pkcs.bin', await encrypt(mech(CKM.RSA_PKCS), rsa.publicKey, Buffer.from('and back')));
    const back = await opensslOk(['pkeyutl', '-decrypt', '-inkey', scratch.path('rsa.pem'), '-in', ours]);
    expect(back.toString()).toBe('and back');
  });

  it('RSA_X_509 decrypt is the raw RSA openssl computes', async () => {
    const block = Buffer.concat([Buffer.from([0]), randomBytes(255)]);
    const input = await scratch.write('raw.bin', block);
    const ciphertext = await opensslOk(['pkeyutl', '-encrypt', '-pubin', '-inkey', scratch.path('rsa-pub.pem'), '-in', input, '-pkeyopt', 'rsa_padding_mode:none']);
    expect(await decrypt(mech(CKM.RSA_X_509), rsa.privateKey, ciphertext)).toEqual(block);
    expect(await encrypt(mech(CKM.RSA_X_509), rsa.publicKey, block)).toEqual(ciphertext);
  });
});

describe('ECDSA', () => {
  it('ECDSA_SHA256 (P-256) made here verifies with openssl dgst after r||s to DER', async () => {
    const signature = await sign(mech(CKM.ECDSA_SHA256), ec.get('P-256')!.privateKey, message);
    expect(signature.length).toBe(64);
    const sig = await scratch.write('ecdsa.sig', rawToDerSignature(signature));
    await opensslOk(['dgst', '-sha256', '-verify', scratch.path('P-256-pub.pem'), '-signature', sig, scratch.path('msg')]);
  });

  for (const [curve, width, hashName] of [
    ['P-224', 28, 'sha224'], ['P-256', 32, 'sha256'], ['P-384', 48, 'sha384'], ['P-521', 66, 'sha512'],
    ['secp256k1', 32, 'sha256'], ['brainpoolP256r1', 32, 'sha256'], ['brainpoolP384r1', 48, 'sha384'], ['brainpoolP512r1', 64, 'sha512'],
  ] as const) {
    it(`raw CKM_ECDSA over a ${hashName} hash on ${curve}: ours verifies with openssl, openssl's verifies here`, async () => {
      const pair = ec.get(curve)!;
      const hash = createHash(hashName).update(message).digest();
      const hashFile = await scratch.write(`${curve}.hash`, hash);
      const ours = await sign(mech(CKM.ECDSA), pair.privateKey, hash);
      expect(ours.length).toBe(2 * width);
      const sig = await scratch.write(`${curve}.sig`, rawToDerSignature(ours));
      await opensslOk(['pkeyutl', '-verify', '-pubin', '-inkey', scratch.path(`${curve}-pub.pem`), '-in', hashFile, '-sigfile', sig]);

      const theirs = await opensslOk(['pkeyutl', '-sign', '-inkey', scratch.path(`${curve}.pem`), '-in', hashFile]);
      const raw = derToRawSignature(theirs, width);
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, raw, hash)).toBe(true);
      raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, raw, hash)).toBe(false);
    });
  }

  it('openssl dgst -sha384 -sign on P-384 verifies here as ECDSA_SHA384', async () => {
    const der = await opensslOk(['dgst', '-sha384', '-sign', scratch.path('P-384.pem'), scratch.path('msg')]);
    expect(await verify(mech(CKM.ECDSA_SHA384), ec.get('P-384')!.publicKey, derToRawSignature(der, 48), message)).toBe(true);
  });
});

describe('the curves beyond the NIST three', () => {
  for (const curve of [P224, SECP256K1, BRAINPOOL_P256R1, BRAINPOOL_P512R1]) {
    it(`${curve.name}: ECDSA_SHA256 verifies with openssl dgst; a key imported from CKA_EC_POINT / CKA_VALUE is the same key; ECDH matches openssl`, async () => {
      const pair = ec.get(curve.name)!;
      expect(pair.publicAttributes.get(0x180)).toEqual(curve.params);
      const signature = await sign(mech(CKM.ECDSA_SHA256), pair.privateKey, message);
      expect(signature.length).toBe(2 * curve.byteLength);
      const sig = await scratch.write(`${curve.name}-dgst.sig`, rawToDerSignature(signature));
      await opensslOk(['dgst', '-sha256', '-verify', scratch.path(`${curve.name}-pub.pem`), '-signature', sig, scratch.path('msg')]);
      // Import: the point gives the same SPKI, the scalar a key that signs what the public key verifies.
      const point = readOctetString(pair.publicAttributes.get(0x181) as Buffer)!;
      expect(ecPublicKeyDer(curve.params, point)).toEqual(pair.publicKey.der);
      // ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING d, ... }
      const sec1 = readElement(createPrivateKey({ key: pair.privateKey.der, format: 'der', type: 'pkcs8' }).export({ format: 'der', type: 'sec1' }))!.value;
      const d = sec1.subarray(5, 5 + sec1[4]!);
      expect(d).toHaveLength(curve.byteLength);
      const imported = { objectClass: pair.privateKey.objectClass, keyType: CKK.EC, der: ecPrivateKeyDer(curve.params, d) };
      expect(await verify(mech(CKM.ECDSA_SHA256), pair.publicKey, await sign(mech(CKM.ECDSA_SHA256), imported, message), message)).toBe(true);
      // ECDH with a peer on the same curve.
      const peer = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params });
      await scratch.writeKey(`${curve.name}-peer-pub.pem`, peer.publicKey);
      const expected = await opensslOk(['pkeyutl', '-derive', '-inkey', scratch.path(`${curve.name}.pem`), '-peerkey', scratch.path(`${curve.name}-peer-pub.pem`)]);
      const derived = await mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: readOctetString(peer.publicAttributes.get(0x181) as Buffer)! }),
        pair.privateKey, CKK.GENERIC_SECRET, 0);
      expect(derived.der).toEqual(expected);
    });
  }
});

describe('ECDH1_DERIVE', () => {
  it('CKD_NULL gives the secret openssl pkeyutl -derive computes', async () => {
    const peer = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params });
    await scratch.writeKey('peer-pub.pem', peer.publicKey);
    const expected = await opensslOk(['pkeyutl', '-derive', '-inkey', scratch.path('P-256.pem'), '-peerkey', scratch.path('peer-pub.pem')]);
    const point = readOctetString(peer.publicAttributes.get(0x181) as Buffer)!;
    const derived = await mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: point }),
      ec.get('P-256')!.privateKey, CKK.GENERIC_SECRET, 0);
    expect(derived.der).toEqual(expected);
  });
});

describe('Ed25519', () => {
  it('EDDSA made here verifies with openssl pkeyutl -rawin; openssl signs what verifies here', async () => {
    const signature = await sign(mech(CKM.EDDSA), ed.privateKey, message.subarray(0, 20), message.subarray(20));
    const sig = await scratch.write('ed.sig', signature);
    await opensslOk(['pkeyutl', '-verify', '-pubin', '-inkey', scratch.path('ed-pub.pem'), '-rawin', '-in', scratch.path('msg'), '-sigfile', sig]);
    const theirs = await opensslOk(['pkeyutl', '-sign', '-inkey', scratch.path('ed.pem'), '-rawin', '-in', scratch.path('msg')]);
    expect(theirs).toEqual(signature); // Ed25519 is deterministic
    expect(await verify(mech(CKM.EDDSA), ed.publicKey, theirs, message)).toBe(true);
  });
});

describe('AES and HMAC against openssl', () => {
  const key = randomBytes(16);
  const key256 = randomBytes(32);
  const iv = randomBytes(16);
  const data = randomBytes(1000);

  it('CBC (no padding) and CBC_PAD match openssl enc', async () => {
    const input = await scratch.write('aes.in', data);
    const padded = await opensslOk(['enc', '-aes-128-cbc', '-K', key.toString('hex'), '-iv', iv.toString('hex'), '-in', input]);
    expect(await encrypt(mech(CKM.AES_CBC_PAD, bytes(iv)), aes(key), data.subarray(0, 333), data.subarray(333))).toEqual(padded);
    const block = await scratch.write('aes-block.in', data.subarray(0, 992));
    const unpadded = await opensslOk(['enc', '-aes-256-cbc', '-nopad', '-K', key256.toString('hex'), '-iv', iv.toString('hex'), '-in', block]);
    expect(await encrypt(mech(CKM.AES_CBC, bytes(iv)), aes(key256), data.subarray(0, 992))).toEqual(unpadded);
  });

  it('ECB and CTR match openssl enc', async () => {
    const block = await scratch.write('ecb.in', data.subarray(0, 512));
    const ecb = await opensslOk(['enc', '-aes-128-ecb', '-nopad', '-K', key.toString('hex'), '-in', block]);
    expect(await encrypt(mech(CKM.AES_ECB), aes(key), data.subarray(0, 512))).toEqual(ecb);
    const input = await scratch.write('ctr.in', data);
    const ctr = await opensslOk(['enc', '-aes-256-ctr', '-K', key256.toString('hex'), '-iv', iv.toString('hex'), '-in', input]);
    const counter = mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 128, counterBlock: iv });
    expect(await encrypt(counter, aes(key256), data.subarray(0, 100), data.subarray(100))).toEqual(ctr);
  });

  it('openssl enc refuses GCM, so GCM is covered by the published vectors instead', async () => {
    const input = await scratch.write('gcm.in', data);
    const result = await openssl(['enc', '-aes-128-gcm', '-K', key.toString('hex'), '-iv', iv.subarray(0, 12).toString('hex'), '-in', input]);
    expect(result.code).not.toBe(0);
  });

  it('SHA384_HMAC matches openssl dgst -mac HMAC', async () => {
    const macKey = randomBytes(48);
    const out = await opensslOk(['dgst', '-sha384', '-mac', 'HMAC', '-macopt', `hexkey:${macKey.toString('hex')}`, '-binary', scratch.path('msg')]);
    expect(await sign(mech(CKM.SHA384_HMAC), secret(CKK.GENERIC_SECRET, macKey), message)).toEqual(out);
  });
});
