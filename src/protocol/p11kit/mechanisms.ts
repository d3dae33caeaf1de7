// CK_MECHANISM on the p11-kit wire (rpc-message.c: p11_rpc_buffer_add_mechanism,
// p11_rpc_buffer_get_mechanism and the mechanism parameter serializers).
//
// The type is a uint32; 0xffffffff stands for a NULL mechanism (C_*Init cancelling an
// operation, p11-kit 0.25.3). What follows depends on the framing:
//
//   legacy (protocol versions 0 and 1: p11-kit 0.24 up to 0.25.5) — the parameter, always: a
//     structured serialization for the mechanisms p11-kit knows (in 0.24.1 only CKM_RSA_PKCS_PSS
//     and CKM_RSA_PKCS_OAEP; 0.25.0 adds the PSS hash variants, ECDH1, AES IVs, CTR, GCM, DES
//     IVs, MAC_GENERAL lengths, DH_PKCS_DERIVE), a byte array for any other (0xffffffff: none).
//   v2 (protocol version 2: p11-kit 0.25.6 on) — nothing for the mechanisms p11-kit lists as
//     taking no parameter; for the others a byte (0: no parameter) then the parameter as above.
//
// p11-kit 0.25.6 switched framing without tying it to the version byte; a client offering
// version 2 is one that frames the v2 way, so the negotiated version picks the framing here.
// A 0.24.1 client sends only mechanisms with no parameter, PSS and OAEP (its
// p11_rpc_mechanism_is_supported), so the wider legacy table costs it nothing.

import { CKM } from '../../pkcs11/constants.js';
import type { Mechanism, MechanismParameter } from '../../pkcs11/mechanism.js';
import { P11KitCodecError, P11KitErrorCode } from './errors.js';
import { ULONG_MINUS_ONE, WireReader, WireWriter } from './wire.js';

export type MechanismFraming = 'legacy' | 'v2';

export function mechanismFraming(version: number): MechanismFraming {
  return version >= 2 ? 'v2' : 'legacy';
}

/** Mechanism type standing for a NULL CK_MECHANISM_PTR. */
export const NULL_MECHANISM = 0xffffffff;

const VENDOR = 0x80000000;

type Serializer = 'pss' | 'oaep' | 'ecdh1' | 'aes-iv' | 'des-iv' | 'ctr' | 'gcm' | 'mac-general' | 'dh-derive' | 'unsupported';

// p11-kit 0.26's p11_rpc_mechanism_serializers (IBM vendor serializers are recognised but not
// implemented: their parameters are refused rather than misread), and ECDH1_COFACTOR_DERIVE,
// whose parameter is CK_ECDH1_DERIVE_PARAMS too: p11-kit has no serializer for it (its clients
// never send it), ntls's own module sends it as ECDH1.
const SERIALIZERS = new Map<number, Serializer>([
  [CKM.RSA_PKCS_PSS, 'pss'], [CKM.SHA1_RSA_PKCS_PSS, 'pss'], [CKM.SHA224_RSA_PKCS_PSS, 'pss'],
  [CKM.SHA256_RSA_PKCS_PSS, 'pss'], [CKM.SHA384_RSA_PKCS_PSS, 'pss'], [CKM.SHA512_RSA_PKCS_PSS, 'pss'],
  [CKM.RSA_PKCS_OAEP, 'oaep'],
  [CKM.ECDH1_DERIVE, 'ecdh1'], [CKM.ECDH1_COFACTOR_DERIVE, 'ecdh1'], [VENDOR + 0x1001b /* CKM_IBM_EC_X25519 */, 'ecdh1'], [VENDOR + 0x1001e /* CKM_IBM_EC_X448 */, 'ecdh1'],
  [CKM.AES_CBC, 'aes-iv'], [CKM.AES_CBC_PAD, 'aes-iv'], [0x2104 /* AES_OFB */, 'aes-iv'], [0x2108 /* AES_CFB1 */, 'aes-iv'],
  [0x2106 /* AES_CFB8 */, 'aes-iv'], [0x2105 /* AES_CFB64 */, 'aes-iv'], [0x2107 /* AES_CFB128 */, 'aes-iv'], [CKM.AES_CTS, 'aes-iv'],
  [CKM.AES_CTR, 'ctr'], [CKM.AES_GCM, 'gcm'],
  [0x122 /* DES_CBC */, 'des-iv'], [0x125 /* DES_CBC_PAD */, 'des-iv'], [0x133 /* DES3_CBC */, 'des-iv'], [0x136 /* DES3_CBC_PAD */, 'des-iv'],
  [0x153 /* DES_CFB8 */, 'des-iv'], [0x152 /* DES_CFB64 */, 'des-iv'], [0x150 /* DES_OFB64 */, 'des-iv'],
  [CKM.SHA_1_HMAC_GENERAL, 'mac-general'], [CKM.SHA224_HMAC_GENERAL, 'mac-general'], [CKM.SHA256_HMAC_GENERAL, 'mac-general'],
  [CKM.SHA384_HMAC_GENERAL, 'mac-general'], [CKM.SHA512_HMAC_GENERAL, 'mac-general'], [0x4a /* SHA512_224_HMAC_GENERAL */, 'mac-general'],
  [0x4e /* SHA512_256_HMAC_GENERAL */, 'mac-general'], [CKM.AES_MAC_GENERAL, 'mac-general'], [CKM.AES_CMAC_GENERAL, 'mac-general'],
  [0x135 /* DES3_MAC_GENERAL */, 'mac-general'], [CKM.DES3_CMAC_GENERAL, 'mac-general'],
  [0x21 /* DH_PKCS_DERIVE */, 'dh-derive'],
  [VENDOR + 0x10031 /* CKM_IBM_ECDSA_OTHER */, 'unsupported'], [VENDOR + 0x70001 /* CKM_IBM_BTC_DERIVE */, 'unsupported'],
  [VENDOR + 0x10024 /* CKM_IBM_KYBER */, 'unsupported'], [VENDOR + 0x20004 /* CKM_IBM_ATTRIBUTEBOUND_WRAP */, 'unsupported'],
]);

// p11-kit 0.26's mechanism_has_no_parameters (it calls the list incomplete; the framing
// depends on exactly this list, so it is copied value for value).
const NO_PARAMETER = new Set<number>([
  0x0, 0xa, 0x1, 0x2, 0x3, 0xb, 0x4, 0x5, 0x6, 0x46, 0x40, 0x41, 0x42, 0x7, 0x8, 0xc, // RSA
  0x10, 0x2000, 0x11, 0x12, 0x1020, // DSA, FORTEZZA_TIMESTAMP
  0x1040, 0x1041, 0x1042, 0x1043, 0x1044, 0x1045, 0x1046, // EC
  0x20, 0x2001, 0x30, 0x2002, 0x1010, // DH, X9_42_DH, KEA
  0x350, 0x100, 0x110, 0x111, 0x330, 0x1080, 0x1081, 0x1083, 0x108a, // key gens, RC4, AES ECB/MAC/CMAC
  0x120, 0x130, 0x131, 0x140, 0x300, 0x310, 0x320, 0x340, 0x370, 0x374, 0x1000, 0x1030, 0x1060,
  0x101, 0x121, 0x132, 0x141, 0x301, 0x311, 0x321, 0x331, 0x341, // ECB modes
  0x103, 0x123, 0x134, 0x138, 0x143, 0x303, 0x313, 0x333, 0x343, 0x380, 0x381, // MACs
  0x1008, 0x1036, 0x1065, // SKIPJACK/BATON/JUNIPER wrap
  0x200, 0x201, 0x210, 0x211, 0x220, 0x221, 0x392, 0x255, 0x256, 0x396, 0x250, 0x251, 0x393,
  0x260, 0x261, 0x394, 0x270, 0x271, 0x395, 0x50, 0x51, 0x53, 0x48, 0x49, 0x4b, 0x4c, 0x4d, 0x4f, // digests, HMACs, key derivation
  0x1070, 0x230, 0x231, 0x240, 0x241, 0x400, // FASTHASH, RIPEMD, KEY_WRAP_LYNKS
  VENDOR + 0x10001, VENDOR + 0x10002, VENDOR + 0x10003, VENDOR + 0x10004, VENDOR + 0x10007, VENDOR + 0x10023,
  VENDOR + 0x10025, VENDOR + 0x10026, VENDOR + 0x10027, VENDOR + 0x10028, VENDOR + 0x1001c, VENDOR + 0x1001f, // IBM
]);

/** True for the mechanisms p11-kit (0.26) sends without any parameter bytes in v2 framing. */
export function mechanismHasNoParameter(type: number): boolean {
  return NO_PARAMETER.has(type);
}

function readParameter(r: WireReader, type: number, at: number): MechanismParameter | null {
  const s = SERIALIZERS.get(type);
  switch (s) {
    case 'pss':
      return { kind: 'pss', hashAlg: r.ulong(), mgf: r.ulong(), saltLength: r.ulong() };
    case 'oaep':
      return { kind: 'oaep', hashAlg: r.ulong(), mgf: r.ulong(), source: r.ulong(), sourceData: r.byteArray() };
    case 'ecdh1': {
      const kdf = r.ulong();
      const sharedData = r.byteArray();
      const publicData = r.byteArray();
      if (publicData === null) throw new P11KitCodecError(P11KitErrorCode.BadValue, 'ECDH1 parameter without public data', { offset: at, rv: 0x71 });
      return { kind: 'ecdh1', kdf, sharedData, publicData };
    }
    case 'aes-iv':
    case 'des-iv': {
      const iv = r.byteArray();
      const want = s === 'aes-iv' ? 16 : 8;
      if (iv === null || iv.length !== want) {
        throw new P11KitCodecError(P11KitErrorCode.BadValue, `IV of ${iv === null ? 'no' : iv.length} bytes, ${want} expected`, { offset: at });
      }
      return { kind: 'bytes', value: iv };
    }
    case 'ctr': {
      const counterBits = r.ulong();
      const cb = r.byteArray();
      if (cb === null || cb.length !== 16) {
        throw new P11KitCodecError(P11KitErrorCode.BadValue, 'CTR counter block is not 16 bytes', { offset: at });
      }
      return { kind: 'ctr', counterBits, counterBlock: cb };
    }
    case 'gcm': {
      const iv = r.byteArray();
      r.ulong(); // ulIvBits: PKCS#11 says the IV length in bits; the IV bytes say it already
      const aad = r.byteArray();
      const tagBits = r.ulong();
      return { kind: 'gcm', iv: iv ?? Buffer.alloc(0), aad: aad ?? Buffer.alloc(0), tagBits };
    }
    case 'mac-general': {
      // CK_MAC_GENERAL_PARAMS is one CK_ULONG: handed on as the C structure a module would
      // receive on x86-64 (8 bytes, little-endian), MechanismParameter having no ulong kind.
      const len = r.ulong();
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(len === ULONG_MINUS_ONE ? 0xffffffffffffffffn : BigInt(len));
      return { kind: 'bytes', value: b };
    }
    case 'dh-derive': {
      const pub = r.byteArray();
      if (pub === null || pub.length === 0) throw new P11KitCodecError(P11KitErrorCode.BadValue, 'DH_PKCS_DERIVE without public value', { offset: at });
      return { kind: 'bytes', value: pub };
    }
    case 'unsupported':
      throw new P11KitCodecError(P11KitErrorCode.BadValue, `parameter of vendor mechanism 0x${type.toString(16)} not supported`, { offset: at, rv: 0x70 /* CKR_MECHANISM_INVALID */ });
    case undefined: {
      const b = r.byteArray();
      return b === null ? null : { kind: 'bytes', value: b };
    }
  }
}

/** Reads an `M` argument; null for the NULL mechanism. */
export function readMechanism(r: WireReader, framing: MechanismFraming): Mechanism | null {
  const at = r.offset;
  const type = r.uint32();
  if (type === NULL_MECHANISM) return null;
  if (framing === 'v2') {
    if (NO_PARAMETER.has(type)) return { type, parameter: null };
    if (r.byte() === 0) return { type, parameter: null };
  }
  return { type, parameter: readParameter(r, type, at) };
}

function writeParameter(w: WireWriter, type: number, p: MechanismParameter): void {
  const s = SERIALIZERS.get(type);
  const wrong = (): never => {
    throw new P11KitCodecError(P11KitErrorCode.Unencodable, `mechanism 0x${type.toString(16)} cannot carry a '${p.kind}' parameter`, { rv: 0x71 });
  };
  switch (s) {
    case 'pss':
      if (p.kind !== 'pss') return wrong();
      w.ulong(p.hashAlg); w.ulong(p.mgf); w.ulong(p.saltLength);
      return;
    case 'oaep':
      if (p.kind !== 'oaep') return wrong();
      w.ulong(p.hashAlg); w.ulong(p.mgf); w.ulong(p.source); w.byteArray(p.sourceData);
      return;
    case 'ecdh1':
      if (p.kind !== 'ecdh1') return wrong();
      w.ulong(p.kdf); w.byteArray(p.sharedData); w.byteArray(p.publicData);
      return;
    case 'aes-iv':
    case 'des-iv':
      if (p.kind !== 'bytes' || p.value.length !== (s === 'aes-iv' ? 16 : 8)) return wrong();
      w.byteArray(p.value);
      return;
    case 'ctr':
      if (p.kind !== 'ctr' || p.counterBlock.length !== 16) return wrong();
      w.ulong(p.counterBits); w.byteArray(p.counterBlock);
      return;
    case 'gcm':
      if (p.kind !== 'gcm') return wrong();
      w.byteArray(p.iv); w.ulong(p.iv.length * 8); w.byteArray(p.aad); w.ulong(p.tagBits);
      return;
    case 'mac-general':
      if (p.kind !== 'bytes' || p.value.length !== 8) return wrong();
      {
        const length = p.value.readBigUInt64LE(0);
        w.ulong(length === 0xffffffffffffffffn ? ULONG_MINUS_ONE : Number(length));
      }
      return;
    case 'dh-derive':
      if (p.kind !== 'bytes' || p.value.length === 0) return wrong();
      w.byteArray(p.value);
      return;
    case 'unsupported':
      return wrong();
    case undefined:
      if (p.kind !== 'bytes') return wrong();
      w.byteArray(p.value);
      return;
  }
}

/** Writes an `M` argument; null writes the NULL mechanism marker. */
export function writeMechanism(w: WireWriter, m: Mechanism | null, framing: MechanismFraming): void {
  if (m === null) {
    w.uint32(NULL_MECHANISM);
    return;
  }
  w.uint32(m.type);
  if (framing === 'v2') {
    if (NO_PARAMETER.has(m.type)) {
      if (m.parameter !== null) {
        throw new P11KitCodecError(P11KitErrorCode.Unencodable, `mechanism 0x${m.type.toString(16)} takes no parameter`, { rv: 0x71 });
      }
      return;
    }
    if (m.parameter === null) {
      w.byte(0);
      return;
    }
    w.byte(1);
    writeParameter(w, m.type, m.parameter);
    return;
  }
  if (m.parameter === null) {
    if (SERIALIZERS.has(m.type)) {
      // A structured reader would take the NULL marker for the start of a structure.
      throw new P11KitCodecError(P11KitErrorCode.Unencodable, `mechanism 0x${m.type.toString(16)} needs its parameter in legacy framing`, { rv: 0x71 });
    }
    w.byteArray(null);
    return;
  }
  writeParameter(w, m.type, m.parameter);
}

/**
 * The `P` element of C_DeriveKey2's answer: nothing for a mechanism without parameter, else a
 * byte saying whether a parameter follows (p11-kit serializes updated fields only for IBM
 * vendor mechanisms, which this codec does not carry).
 */
export type MechanismParameterUpdate = { hasParameter: boolean } | null;

export function readParameterUpdate(r: WireReader, mechanismType: number): MechanismParameterUpdate {
  if (NO_PARAMETER.has(mechanismType)) return null;
  const has = r.byte();
  if (has !== 0 && SERIALIZERS.get(mechanismType) === 'unsupported') {
    throw new P11KitCodecError(P11KitErrorCode.BadValue, `parameter update of vendor mechanism 0x${mechanismType.toString(16)} not supported`, { rv: 0x70 });
  }
  return { hasParameter: has !== 0 };
}

export function writeParameterUpdate(w: WireWriter, mechanismType: number, update: MechanismParameterUpdate): void {
  if (NO_PARAMETER.has(mechanismType)) return;
  w.byte(update?.hasParameter ? 1 : 0);
}
