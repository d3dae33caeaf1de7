// CMAC (NIST SP 800-38B, RFC 4493) over AES and triple DES: CKM_AES_CMAC, CKM_DES3_CMAC (a
// whole block of MAC) and their _GENERAL forms (CK_MAC_GENERAL_PARAMS: the first 1 to block
// bytes). node:crypto has no CMAC; it is CBC-MAC on node's cipher with the last block masked by
// a subkey, the last block held back until final because only then is it known to be the last.

import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';
import { CKM, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { KeyMaterial, StreamingOperation } from './contract.js';
import { requireNoParameter } from './digest.js';
import { DES3_KEY_BYTES, des3Key } from './des3.js';
import type { MechanismEntry } from './entry.js';
import { aesKey } from './keys.js';

interface BlockCipher {
  block: number;
  /** SP 800-38B's R_b: 0x87 for 128-bit blocks, 0x1b for 64-bit ones. */
  rb: number;
  cbc(key: Buffer): Cipher;
}

const AES: BlockCipher = {
  block: 16, rb: 0x87,
  cbc: (key) => createCipheriv(`aes-${key.length * 8}-cbc`, key, Buffer.alloc(16)).setAutoPadding(false),
};
const DES3: BlockCipher = {
  block: 8, rb: 0x1b,
  cbc: (key) => createCipheriv('des-ede3-cbc', key, Buffer.alloc(8)).setAutoPadding(false),
};

/** The block shifted left one bit, R_b added when its top bit was set (no branch on the key). */
function doubled(block: Buffer, rb: number): Buffer {
  const out = Buffer.alloc(block.length);
  for (let i = 0; i < block.length; i++) out[i] = ((block[i]! << 1) | (i + 1 < block.length ? block[i + 1]! >> 7 : 0)) & 0xff;
  out[block.length - 1] = out[block.length - 1]! ^ (rb & -(block[0]! >> 7));
  return out;
}

class CmacState {
  private readonly chain: Cipher;
  private readonly subkeys: [Buffer, Buffer];
  /** Input not yet through the chain: at most one block, the last one seen. */
  private held = Buffer.alloc(0);
  private lastOut = Buffer.alloc(0);

  constructor(private readonly cipher: BlockCipher, key: Buffer) {
    const l = cipher.cbc(key).update(Buffer.alloc(cipher.block));
    const k1 = doubled(l, cipher.rb);
    this.subkeys = [k1, doubled(k1, cipher.rb)];
    l.fill(0);
    this.chain = cipher.cbc(key);
  }

  update(data: Buffer): void {
    const all = this.held.length > 0 ? Buffer.concat([this.held, data]) : data;
    // Keep the last block back (whole or partial), feed the rest.
    const keep = all.length === 0 ? 0 : ((all.length - 1) % this.cipher.block) + 1;
    const feed = all.subarray(0, all.length - keep);
    if (feed.length > 0) this.remember(this.chain.update(feed));
    this.held = Buffer.from(all.subarray(all.length - keep));
  }

  final(): Buffer {
    const { block } = this.cipher;
    const last = Buffer.alloc(block);
    this.held.copy(last);
    const whole = this.held.length === block;
    if (!whole) last[this.held.length] = 0x80;
    const subkey = whole ? this.subkeys[0] : this.subkeys[1];
    for (let i = 0; i < block; i++) last[i] = last[i]! ^ subkey[i]!;
    this.remember(this.chain.update(last));
    this.chain.final();
    this.subkeys[0].fill(0);
    this.subkeys[1].fill(0);
    return this.lastOut;
  }

  private remember(out: Buffer): void {
    if (out.length >= this.cipher.block) this.lastOut = Buffer.from(out.subarray(out.length - this.cipher.block));
  }
}

/** The MAC length a mechanism asks for: all of it, or CK_MAC_GENERAL_PARAMS' 1..that many bytes. */
export function macLength(mechanism: Mechanism, full: number, general: boolean): number {
  if (!general) {
    requireNoParameter(mechanism);
    return full;
  }
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'bytes' || (parameter.value.length !== 8 && parameter.value.length !== 4)) {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
  const length = parameter.value.length === 8 ? parameter.value.readBigUInt64LE(0) : BigInt(parameter.value.readUInt32LE(0));
  if (length < 1n || length > BigInt(full)) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  return Number(length);
}

function cmacSigner(cipher: BlockCipher, keyOf: (material: KeyMaterial) => Buffer, general: boolean) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const length = macLength(mechanism, cipher.block, general);
    const state = new CmacState(cipher, keyOf(material));
    return {
      async update(data) { state.update(data); },
      async final() { return state.final().subarray(0, length); },
    };
  };
}

function cmacVerifier(cipher: BlockCipher, keyOf: (material: KeyMaterial) => Buffer, general: boolean) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    const length = macLength(mechanism, cipher.block, general);
    const state = new CmacState(cipher, keyOf(material));
    return {
      async update(data) { state.update(data); },
      async final(signature) {
        if (signature.length !== length) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
        return timingSafeEqual(state.final().subarray(0, length), signature);
      },
    };
  };
}

function entries(plain: number, general: number, cipher: BlockCipher, keyOf: (material: KeyMaterial) => Buffer, sizes: { minKeySize: number; maxKeySize: number }): MechanismEntry[] {
  return [
    { type: plain, ...sizes, sign: cmacSigner(cipher, keyOf, false), verify: cmacVerifier(cipher, keyOf, false) },
    { type: general, ...sizes, sign: cmacSigner(cipher, keyOf, true), verify: cmacVerifier(cipher, keyOf, true) },
  ];
}

export const cmacEntries: MechanismEntry[] = [
  ...entries(CKM.AES_CMAC, CKM.AES_CMAC_GENERAL, AES, aesKey, { minKeySize: 16, maxKeySize: 32 }),
  ...entries(CKM.DES3_CMAC, CKM.DES3_CMAC_GENERAL, DES3, des3Key, { minKeySize: DES3_KEY_BYTES, maxKeySize: DES3_KEY_BYTES }),
];
