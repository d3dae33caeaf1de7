import { describe, expect, it } from 'vitest';
import { CKA, CKG, CKM, CKR, CKO, CKK } from '../../../src/pkcs11/constants.js';
import {
  P11KIT_CALLS, P11KIT_HANDSHAKE, P11KitErrorCode, answerOutput, attr, decodeRequest, decodeResponse,
  encodeErrorResponse, encodeRequest, encodeResponse, lengthOnly, negotiateVersion, outputRequest,
  parameterUpdateFor, request, response, wireResults, wireValue, type P11KitRequest, type P11KitResponse, type Result,
} from '../../../src/protocol/p11kit/index.js';
import { MAX_TEMPLATE_ATTRIBUTES } from '../../../src/protocol/p11kit/attributes.js';
import { attrBytes, bytes } from './fixture-writer.js';

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

function errorOf<T>(r: Result<T>) {
  if (r.ok) throw new Error('expected an error');
  return r.error;
}

const hs = P11KIT_HANDSHAKE.toString('latin1');

describe('call table', () => {
  // p11-kit 0.24.1 p11-kit/rpc-message.h, in order.
  const names024 = [
    'ERROR', 'C_Initialize', 'C_Finalize', 'C_GetInfo', 'C_GetSlotList', 'C_GetSlotInfo', 'C_GetTokenInfo',
    'C_GetMechanismList', 'C_GetMechanismInfo', 'C_InitToken', 'C_OpenSession', 'C_CloseSession', 'C_CloseAllSessions',
    'C_GetSessionInfo', 'C_InitPIN', 'C_SetPIN', 'C_GetOperationState', 'C_SetOperationState', 'C_Login', 'C_Logout',
    'C_CreateObject', 'C_CopyObject', 'C_DestroyObject', 'C_GetObjectSize', 'C_GetAttributeValue', 'C_SetAttributeValue',
    'C_FindObjectsInit', 'C_FindObjects', 'C_FindObjectsFinal', 'C_EncryptInit', 'C_Encrypt', 'C_EncryptUpdate',
    'C_EncryptFinal', 'C_DecryptInit', 'C_Decrypt', 'C_DecryptUpdate', 'C_DecryptFinal', 'C_DigestInit', 'C_Digest',
    'C_DigestUpdate', 'C_DigestKey', 'C_DigestFinal', 'C_SignInit', 'C_Sign', 'C_SignUpdate', 'C_SignFinal',
    'C_SignRecoverInit', 'C_SignRecover', 'C_VerifyInit', 'C_Verify', 'C_VerifyUpdate', 'C_VerifyFinal',
    'C_VerifyRecoverInit', 'C_VerifyRecover', 'C_DigestEncryptUpdate', 'C_DecryptDigestUpdate', 'C_SignEncryptUpdate',
    'C_DecryptVerifyUpdate', 'C_GenerateKey', 'C_GenerateKeyPair', 'C_WrapKey', 'C_UnwrapKey', 'C_DeriveKey',
    'C_SeedRandom', 'C_GenerateRandom', 'C_WaitForSlotEvent',
  ];

  it('has the ids 0-65 of p11-kit 0.24.1 in order', () => {
    expect(P11KIT_CALLS.slice(0, 66).map((c) => c.name)).toEqual(names024);
  });

  it('has a few signatures exactly as p11-kit spells them', () => {
    const sig = (n: string) => P11KIT_CALLS.find((c) => c.name === n)!;
    expect([sig('C_GetTokenInfo').request, sig('C_GetTokenInfo').response]).toEqual(['u', 'ssssuuuuuuuuuuuvvs']);
    expect([sig('C_GetAttributeValue').request, sig('C_GetAttributeValue').response]).toEqual(['uufA', 'aAu']);
    expect([sig('C_UnwrapKey').request, sig('C_WrapKey').request]).toEqual(['uMuayaA', 'uMuufy']);
    expect([sig('C_InitToken2').id, sig('C_InitToken2').request, sig('C_InitToken2').since]).toEqual([88, 'uays', 1]);
    expect([sig('C_DeriveKey2').id, sig('C_DeriveKey2').response, sig('C_DeriveKey2').since]).toEqual([89, 'uPu', 2]);
  });

  it('types each call\'s args from the table', () => {
    const ok = request('C_Sign', { session: 1, data: null, signature: outputRequest(null) });
    expect(ok.call).toBe('C_Sign');
    // @ts-expect-error the output room is an OutputRequest, not a number
    request('C_Sign', { session: 1, data: null, signature: 5 });
    // @ts-expect-error C_Login has no field 'label'
    request('C_Login', { session: 1, userType: 1, pin: null, label: 'x' });
    // @ts-expect-error C_GetSlotList answers a list or a length, not a Buffer
    response('C_GetSlotList', { slotList: Buffer.alloc(1) });
  });

  it('negotiates the lower version', () => {
    expect(negotiateVersion(0)).toBe(0);
    expect(negotiateVersion(1)).toBe(1);
    expect(negotiateVersion(7)).toBe(2);
    expect(negotiateVersion(2, 0)).toBe(0);
  });
});

describe('requests: fixed bytes', () => {
  it('C_Initialize as p11-kit-client.so 0.24.1 sends it', () => {
    const body = bytes().head(1, 'ayyay').ay(hs).u8(0).ay(Buffer.from([0])).build();
    const req = value(decodeRequest(body));
    expect(req).toEqual({ call: 'C_Initialize', args: { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: Buffer.from([0]) } });
    expect(value(encodeRequest(req))).toEqual(body);
  });

  it('C_Initialize without the handshake is answered CKR_GENERAL_ERROR', () => {
    const body = bytes().head(1, 'ayyay').ay('NOT-THE-HANDSHAKE').u8(0).ay(Buffer.from([0])).build();
    const err = errorOf(decodeRequest(body));
    expect(err.code).toBe(P11KitErrorCode.BadHandshake);
    expect(err.rv).toBe(CKR.GENERAL_ERROR);
    expect(err.fatal).toBe(false);
  });

  it('C_GetSlotList length query and fetch (fu)', () => {
    const q = bytes().head(4, 'yfu').u8(1).u32(0).build();
    expect(value(decodeRequest(q))).toEqual({ call: 'C_GetSlotList', args: { tokenPresent: 1, slotList: { query: true, capacity: 0 } } });
    const f = bytes().head(4, 'yfu').u8(0).u32(3).build();
    expect(value(decodeRequest(f))).toEqual({ call: 'C_GetSlotList', args: { tokenPresent: 0, slotList: { query: false, capacity: 3 } } });
    expect(value(encodeRequest(request('C_GetSlotList', { tokenPresent: 0, slotList: outputRequest(3) })))).toEqual(f);
  });

  it('C_Login with a PIN and with a NULL PIN (ay)', () => {
    const body = bytes().head(18, 'uuay').u64(7).u64(1).ay('1234').build();
    expect(value(decodeRequest(body))).toEqual({ call: 'C_Login', args: { session: 7, userType: 1, pin: Buffer.from('1234') } });
    const nullPin = bytes().head(18, 'uuay').u64(7).u64(1).ayNull(0).build();
    expect(value(decodeRequest(nullPin))).toEqual({ call: 'C_Login', args: { session: 7, userType: 1, pin: null } });
    expect(value(encodeRequest(request('C_Login', { session: 7, userType: 1, pin: null })))).toEqual(nullPin);
  });

  it('a NULL input array with a length (C_SignUpdate(NULL, 16)) is CKR_ARGUMENTS_BAD, as the module behind p11-kit\'s server says, not empty data', () => {
    const body = bytes().head(44, 'uay').u64(7).ayNull(16).build();
    const decoded = decodeRequest(body);
    expect(decoded.ok).toBe(false);
    expect(errorOf(decoded).rv).toBe(CKR.ARGUMENTS_BAD);
    expect(errorOf(decoded).fatal).toBe(false);
  });

  it('C_Sign with the three fy forms: query, room, empty buffer (0xffffffff)', () => {
    const mk = (n: number) => bytes().head(43, 'uayfy').u64(1).ay('data').u32(n).build();
    const sign = (b: Buffer) => (value(decodeRequest(b)) as Extract<P11KitRequest, { call: 'C_Sign' }>).args.signature;
    expect(sign(mk(0))).toEqual({ query: true, capacity: 0 });
    expect(sign(mk(256))).toEqual({ query: false, capacity: 256 });
    expect(sign(mk(0xffffffff))).toEqual({ query: false, capacity: 0 });
    expect(value(encodeRequest(request('C_Sign', { session: 1, data: Buffer.from('data'), signature: { query: false, capacity: 0 } })))).toEqual(mk(0xffffffff));
  });

  it('C_InitToken (z label) and C_InitToken2 (s label, 32 bytes)', () => {
    const v0 = bytes().head(9, 'uayz').u64(0x12).ay('1234').arr('second').build();
    expect(value(decodeRequest(v0))).toEqual({ call: 'C_InitToken', args: { slotId: 0x12, pin: Buffer.from('1234'), label: 'second' } });
    const v1 = bytes().head(88, 'uays').u64(0x12).ay('1234').padded('second', 32).build();
    expect(value(decodeRequest(v1, { version: 1 }))).toEqual({ call: 'C_InitToken2', args: { slotId: 0x12, pin: Buffer.from('1234'), label: 'second' } });
    expect(value(encodeRequest(request('C_InitToken2', { slotId: 0x12, pin: Buffer.from('1234'), label: 'second' })))).toEqual(v1);
    const short = bytes().head(88, 'uays').u64(0x12).ay('1234').padded('second', 31).build();
    expect(errorOf(decodeRequest(short)).code).toBe(P11KitErrorCode.BadValue);
  });

  it('C_GetAttributeValue buffer (fA)', () => {
    const body = bytes().head(24, 'uufA').u64(1).u64(2).u32(2).u32(CKA.LABEL).u32(0).u32(CKA.MODULUS).u32(256).build();
    expect(value(decodeRequest(body))).toEqual({
      call: 'C_GetAttributeValue',
      args: { session: 1, object: 2, template: [{ type: CKA.LABEL, length: 0 }, { type: CKA.MODULUS, length: 256 }] },
    });
  });

  it('C_CreateObject with every attribute kind (aA)', () => {
    const template = bytes().u32(8)
      .raw(attrBytes(CKA.CLASS, 8, bytes().u64(CKO.SECRET_KEY).build()))
      .raw(attrBytes(CKA.TOKEN, 1, Buffer.from([1])))
      .raw(attrBytes(CKA.LABEL, 3, bytes().arr('aes').build()))
      .raw(attrBytes(CKA.START_DATE, 8, bytes().arr('20260101').build()))
      .raw(attrBytes(CKA.ALLOWED_MECHANISMS, 16, bytes().u32(2).u64(CKM.AES_ECB).u64(CKM.AES_GCM).build()))
      .raw(attrBytes(CKA.WRAP_TEMPLATE, 24, bytes().u32(1).raw(attrBytes(CKA.KEY_TYPE, 8, bytes().u64(CKK.AES).build())).build()))
      .raw(bytes().u32(CKA.ID).u8(0).build()) // unavailable
      .raw(attrBytes(CKA.SUBJECT, 0, bytes().nullArr().build())) // NULL, length 0
      .build();
    const body = bytes().head(20, 'uaA').u64(5).raw(template).build();
    const req = value(decodeRequest(body));
    expect(req).toEqual({
      call: 'C_CreateObject',
      args: {
        session: 5,
        template: [
          { type: CKA.CLASS, value: { kind: 'ulong', value: CKO.SECRET_KEY }, length: 8 },
          { type: CKA.TOKEN, value: { kind: 'byte', value: 1 }, length: 1 },
          { type: CKA.LABEL, value: { kind: 'bytes', value: Buffer.from('aes') }, length: 3 },
          { type: CKA.START_DATE, value: { kind: 'date', value: Buffer.from('20260101') }, length: 8 },
          { type: CKA.ALLOWED_MECHANISMS, value: { kind: 'mechanisms', value: [CKM.AES_ECB, CKM.AES_GCM] }, length: 16 },
          { type: CKA.WRAP_TEMPLATE, value: { kind: 'attributes', value: [{ type: CKA.KEY_TYPE, value: { kind: 'ulong', value: CKK.AES }, length: 8 }] }, length: 24 },
          { type: CKA.ID, value: null, length: -1 },
          { type: CKA.SUBJECT, value: null, length: 0 },
        ],
      },
    });
    expect(value(encodeRequest(req))).toEqual(body);
    // The builders give the same bytes, lengths derived.
    const built = request('C_CreateObject', {
      session: 5,
      template: [
        attr.ulong(CKA.CLASS, CKO.SECRET_KEY), attr.bool(CKA.TOKEN, true), attr.bytes(CKA.LABEL, 'aes'),
        attr.date(CKA.START_DATE, '20260101'), attr.mechanisms(CKA.ALLOWED_MECHANISMS, [CKM.AES_ECB, CKM.AES_GCM]),
        attr.template(CKA.WRAP_TEMPLATE, [attr.ulong(CKA.KEY_TYPE, CKK.AES)]), attr.unavailable(CKA.ID), attr.sizeOnly(CKA.SUBJECT, 0),
      ],
    });
    expect(value(encodeRequest(built))).toEqual(body);
  });

  it('refuses an attribute array nested in an attribute array', () => {
    const inner = attrBytes(CKA.UNWRAP_TEMPLATE, 0, bytes().u32(0).build());
    const body = bytes().head(20, 'uaA').u64(5).u32(1).raw(attrBytes(CKA.WRAP_TEMPLATE, 24, bytes().u32(1).raw(inner).build())).build();
    expect(errorOf(decodeRequest(body)).code).toBe(P11KitErrorCode.NestingTooDeep);
  });

  it('a template of more than 4096 attributes, at the top or inside CKA_WRAP_TEMPLATE, or a C_GetAttributeValue of more, is CKR_HOST_MEMORY', () => {
    const token = attrBytes(CKA.TOKEN, 1, Buffer.from([1]));
    const many = (n: number) => Buffer.concat(Array.from({ length: n }, () => token));
    const top = (n: number) => bytes().head(20, 'uaA').u64(5).u32(n).raw(many(n)).build();
    expect(value(decodeRequest(top(MAX_TEMPLATE_ATTRIBUTES))).call).toBe('C_CreateObject');
    const over = errorOf(decodeRequest(top(MAX_TEMPLATE_ATTRIBUTES + 1)));
    expect(over.code).toBe(P11KitErrorCode.TooManyAttributes);
    expect(over.rv).toBe(CKR.HOST_MEMORY);
    const inner = (n: number) => bytes().head(20, 'uaA').u64(5).u32(1).raw(attrBytes(CKA.WRAP_TEMPLATE, 24 * n, bytes().u32(n).raw(many(n)).build())).build();
    expect(value(decodeRequest(inner(MAX_TEMPLATE_ATTRIBUTES))).call).toBe('C_CreateObject');
    expect(errorOf(decodeRequest(inner(MAX_TEMPLATE_ATTRIBUTES + 1))).code).toBe(P11KitErrorCode.TooManyAttributes);
    const lengths = (n: number) => {
      const b = bytes().head(24, 'uufA').u64(5).u64(9).u32(n);
      for (let i = 0; i < n; i++) b.u32(CKA.LABEL).u32(16);
      return b.build();
    };
    expect(value(decodeRequest(lengths(MAX_TEMPLATE_ATTRIBUTES))).call).toBe('C_GetAttributeValue');
    expect(errorOf(decodeRequest(lengths(MAX_TEMPLATE_ATTRIBUTES + 1))).code).toBe(P11KitErrorCode.TooManyAttributes);
  });

  it('refuses a value longer than its declared length, and a date of 5 bytes', () => {
    const tooLong = bytes().head(20, 'uaA').u64(5).u32(1).raw(attrBytes(CKA.LABEL, 2, bytes().arr('abc').build())).build();
    expect(errorOf(decodeRequest(tooLong)).code).toBe(P11KitErrorCode.BadValue);
    const date = bytes().head(20, 'uaA').u64(5).u32(1).raw(attrBytes(CKA.END_DATE, 8, bytes().arr('20261').build())).build();
    expect(errorOf(decodeRequest(date)).code).toBe(P11KitErrorCode.BadValue);
  });

  describe('mechanisms (M)', () => {
    const signInit = (mech: Buffer) => bytes().head(42, 'uMu').u64(3).raw(mech).u64(9).build();
    const mechOf = (b: Buffer, version = 0) => (value(decodeRequest(b, { version })) as Extract<P11KitRequest, { call: 'C_SignInit' }>).args.mechanism;

    it('legacy framing: no parameter is a NULL byte array', () => {
      const b = signInit(bytes().u32(CKM.SHA256_RSA_PKCS).nullArr().build());
      expect(mechOf(b)).toEqual({ type: CKM.SHA256_RSA_PKCS, parameter: null });
      expect(value(encodeRequest(request('C_SignInit', { session: 3, mechanism: { type: CKM.SHA256_RSA_PKCS, parameter: null }, key: 9 })))).toEqual(b);
    });

    it('legacy framing: PSS parameters as three ulongs', () => {
      const b = signInit(bytes().u32(CKM.RSA_PKCS_PSS).u64(CKM.SHA256).u64(CKG.MGF1_SHA256).u64(32).build());
      const m = { type: CKM.RSA_PKCS_PSS, parameter: { kind: 'pss' as const, hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 } };
      expect(mechOf(b)).toEqual(m);
      expect(value(encodeRequest(request('C_SignInit', { session: 3, mechanism: m, key: 9 })))).toEqual(b);
    });

    it('legacy framing: OAEP parameters with and without source data', () => {
      const b = signInit(bytes().u32(CKM.RSA_PKCS_OAEP).u64(CKM.SHA_1).u64(CKG.MGF1_SHA1).u64(0).nullArr().build());
      expect(mechOf(b)).toEqual({ type: CKM.RSA_PKCS_OAEP, parameter: { kind: 'oaep', hashAlg: CKM.SHA_1, mgf: CKG.MGF1_SHA1, source: 0, sourceData: null } });
      const l = signInit(bytes().u32(CKM.RSA_PKCS_OAEP).u64(CKM.SHA256).u64(CKG.MGF1_SHA256).u64(1).arr('label').build());
      expect(mechOf(l)).toEqual({ type: CKM.RSA_PKCS_OAEP, parameter: { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: 1, sourceData: Buffer.from('label') } });
    });

    it('AES GCM, CTR, CBC IV and ECDH1 parameters (p11-kit 0.25 serializers)', () => {
      const iv = Buffer.alloc(12, 1);
      const gcm = signInit(bytes().u32(CKM.AES_GCM).arr(iv).u64(96).arr('aad').u64(128).build());
      expect(mechOf(gcm)).toEqual({ type: CKM.AES_GCM, parameter: { kind: 'gcm', iv, aad: Buffer.from('aad'), tagBits: 128 } });
      const cb = Buffer.alloc(16, 2);
      const ctr = signInit(bytes().u32(CKM.AES_CTR).u64(32).arr(cb).build());
      expect(mechOf(ctr)).toEqual({ type: CKM.AES_CTR, parameter: { kind: 'ctr', counterBits: 32, counterBlock: cb } });
      const cbc = signInit(bytes().u32(CKM.AES_CBC_PAD).arr(cb).build());
      expect(mechOf(cbc)).toEqual({ type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: cb } });
      const badIv = signInit(bytes().u32(CKM.AES_CBC).arr(Buffer.alloc(15)).build());
      expect(errorOf(decodeRequest(badIv)).code).toBe(P11KitErrorCode.BadValue);
      const pub = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 3)]);
      const ecdh = signInit(bytes().u32(CKM.ECDH1_DERIVE).u64(1).nullArr().arr(pub).build());
      const m = { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1' as const, kdf: 1, sharedData: null, publicData: pub } };
      expect(mechOf(ecdh)).toEqual(m);
      expect(value(encodeRequest(request('C_SignInit', { session: 3, mechanism: m, key: 9 })))).toEqual(ecdh);
      for (const b of [gcm, ctr, cbc]) expect(value(encodeRequest(value(decodeRequest(b))))).toEqual(b);
    });

    it('ECDH1_COFACTOR_DERIVE: CK_ECDH1_DERIVE_PARAMS as ECDH1 (ntls\'s module sends it; p11-kit has no serializer for it)', () => {
      const pub = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 5)]);
      for (const version of [0, 2]) {
        const head = bytes().u32(CKM.ECDH1_COFACTOR_DERIVE);
        const b = signInit((version === 2 ? head.u8(1) : head).u64(1).nullArr().arr(pub).build());
        const m = { type: CKM.ECDH1_COFACTOR_DERIVE, parameter: { kind: 'ecdh1' as const, kdf: 1, sharedData: null, publicData: pub } };
        expect(mechOf(b, version)).toEqual(m);
        expect(value(encodeRequest(request('C_SignInit', { session: 3, mechanism: m, key: 9 }), { version }))).toEqual(b);
      }
    });

    it('v2 framing: nothing after a parameterless mechanism, a presence byte before others', () => {
      const none = signInit(bytes().u32(CKM.ECDSA).build());
      expect(mechOf(none, 2)).toEqual({ type: CKM.ECDSA, parameter: null });
      const pss = signInit(bytes().u32(CKM.SHA256_RSA_PKCS_PSS).u8(1).u64(CKM.SHA256).u64(CKG.MGF1_SHA256).u64(32).build());
      expect(mechOf(pss, 2)).toEqual({ type: CKM.SHA256_RSA_PKCS_PSS, parameter: { kind: 'pss', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 } });
      const absent = signInit(bytes().u32(CKM.EDDSA).u8(0).build());
      expect(mechOf(absent, 2)).toEqual({ type: CKM.EDDSA, parameter: null });
      const withBytes = signInit(bytes().u32(CKM.EDDSA).u8(1).arr('ctx').build());
      expect(mechOf(withBytes, 2)).toEqual({ type: CKM.EDDSA, parameter: { kind: 'bytes', value: Buffer.from('ctx') } });
      for (const b of [none, pss, absent, withBytes]) expect(value(encodeRequest(value(decodeRequest(b, { version: 2 })), { version: 2 }))).toEqual(b);
    });

    it('a CK_MAC_GENERAL_PARAMS of (CK_ULONG)-1 goes on as the 8 bytes a module would get, not an exception', () => {
      const b = signInit(bytes().u32(CKM.SHA256_HMAC_GENERAL).u8(1).u64(0xffffffffffffffffn).build());
      expect(mechOf(b, 2)).toEqual({ type: CKM.SHA256_HMAC_GENERAL, parameter: { kind: 'bytes', value: Buffer.alloc(8, 0xff) } });
      const ten = signInit(bytes().u32(CKM.SHA256_HMAC_GENERAL).u8(1).u64(10).build());
      expect(mechOf(ten, 2)).toEqual({ type: CKM.SHA256_HMAC_GENERAL, parameter: { kind: 'bytes', value: Buffer.from([10, 0, 0, 0, 0, 0, 0, 0]) } });
      for (const request of [b, ten]) expect(value(encodeRequest(value(decodeRequest(request, { version: 2 })), { version: 2 }))).toEqual(request);
    });

    it('the NULL mechanism (cancel) is 0xffffffff alone', () => {
      const b = signInit(bytes().u32(0xffffffff).build());
      expect(mechOf(b)).toBeNull();
      expect(mechOf(b, 2)).toBeNull();
    });

    it('refuses to encode a parameter the mechanism cannot carry', () => {
      const r = encodeRequest(request('C_SignInit', { session: 3, mechanism: { type: CKM.RSA_PKCS_PSS, parameter: { kind: 'bytes', value: Buffer.alloc(3) } }, key: 9 }));
      expect(errorOf(r).code).toBe(P11KitErrorCode.Unencodable);
      const v2 = encodeRequest(request('C_SignInit', { session: 3, mechanism: { type: CKM.ECDSA, parameter: { kind: 'bytes', value: Buffer.alloc(3) } }, key: 9 }), { version: 2 });
      expect(errorOf(v2).code).toBe(P11KitErrorCode.Unencodable);
    });
  });

  it('decodes the message-based PKCS#11 3.0 calls generically', () => {
    const body = bytes().head(81, 'uayayyfy').u64(1).ay('p').ay('data').u8(1).u32(64).build();
    expect(value(decodeRequest(body))).toEqual({
      call: 'C_SignMessageNext',
      args: { session: 1, parameter: Buffer.from('p'), data: Buffer.from('data'), signatureExpected: 1, signature: { query: false, capacity: 64 } },
    });
  });
});

describe('requests: malformed input gives coded errors', () => {
  it('unknown call ids and ERROR as a request are fatal, as in p11-kit', () => {
    for (const id of [0, 90, 0xffffffff]) {
      const err = errorOf(decodeRequest(bytes().head(id, 'u').u64(1).build()));
      expect(err.code).toBe(P11KitErrorCode.BadCallId);
      expect(err.fatal).toBe(true);
      expect(err.rv).toBe(CKR.FUNCTION_NOT_SUPPORTED);
    }
  });

  it('a signature that does not match is fatal', () => {
    const err = errorOf(decodeRequest(bytes().head(11, 'uu').u64(1).u64(2).build()));
    expect(err.code).toBe(P11KitErrorCode.SignatureMismatch);
    expect(err.fatal).toBe(true);
    expect(errorOf(decodeRequest(bytes().u32(11).nullArr().build())).code).toBe(P11KitErrorCode.SignatureMismatch);
  });

  it('an empty or 3-byte body is fatal (no call id)', () => {
    expect(errorOf(decodeRequest(Buffer.alloc(0))).fatal).toBe(true);
    expect(errorOf(decodeRequest(Buffer.from([0, 0, 0]))).code).toBe(P11KitErrorCode.Truncated);
  });

  it('truncated arguments answer CKR_DEVICE_ERROR', () => {
    const full = bytes().head(18, 'uuay').u64(7).u64(1).ay('1234').build();
    for (let cut = 4 + 4 + 4 + 1; cut < full.length; cut++) {
      const err = errorOf(decodeRequest(full.subarray(0, cut)));
      expect([P11KitErrorCode.Truncated, P11KitErrorCode.BadLength, P11KitErrorCode.SignatureMismatch]).toContain(err.code);
      if (cut >= 12) {
        expect(err.rv).toBe(CKR.DEVICE_ERROR);
        expect(err.fatal).toBe(false);
      }
    }
  });

  it('a byte array declaring more than remains is refused before allocating', () => {
    const err = errorOf(decodeRequest(bytes().head(18, 'uuay').u64(7).u64(1).u8(1).u32(0x7ffffffe).raw('12').build()));
    expect(err.code).toBe(P11KitErrorCode.BadLength);
    expect(errorOf(decodeRequest(bytes().head(18, 'uuay').u64(7).u64(1).u8(1).u32(0x7fffffff).build())).code).toBe(P11KitErrorCode.BadLength);
  });

  it('counts larger than what remains are refused before allocating', () => {
    expect(errorOf(decodeRequest(bytes().head(20, 'uaA').u64(5).u32(0xffffffff).build())).code).toBe(P11KitErrorCode.BadLength);
    expect(errorOf(decodeRequest(bytes().head(24, 'uufA').u64(1).u64(2).u32(1_000_000).u32(0).build())).code).toBe(P11KitErrorCode.BadLength);
    const mechs = bytes().head(20, 'uaA').u64(5).u32(1).raw(attrBytes(CKA.ALLOWED_MECHANISMS, 8, bytes().u32(0x10000000).build())).build();
    expect(errorOf(decodeRequest(mechs)).code).toBe(P11KitErrorCode.BadLength);
  });

  it('bytes after the last argument are refused', () => {
    expect(errorOf(decodeRequest(bytes().head(11, 'u').u64(1).u8(0).build())).code).toBe(P11KitErrorCode.TrailingData);
  });

  it('a CK_ULONG beyond 2^53 is refused, ~0 is -1', () => {
    expect(errorOf(decodeRequest(bytes().head(11, 'u').u64(1n << 60n).build())).code).toBe(P11KitErrorCode.UlongRange);
    expect(value(decodeRequest(bytes().head(11, 'u').u64(0xffffffffffffffffn).build()))).toEqual({ call: 'C_CloseSession', args: { session: -1 } });
  });
});

describe('responses', () => {
  it('C_GetInfo (vsusv) both ways', () => {
    const body = bytes().head(3, 'vsusv').u8(2).u8(40).padded('ntls', 32).u64(0).padded('ntls p11-kit', 32).u8(0).u8(1).build();
    const resp = response('C_GetInfo', {
      cryptokiVersion: { major: 2, minor: 40 }, manufacturerId: 'ntls', flags: 0, libraryDescription: 'ntls p11-kit', libraryVersion: { major: 0, minor: 1 },
    });
    expect(value(encodeResponse(resp))).toEqual(body);
    expect(value(decodeResponse(body, 'C_GetInfo'))).toEqual(resp);
  });

  it('C_GetTokenInfo with CK_UNAVAILABLE_INFORMATION memory fields', () => {
    const b = bytes().head(6, 'ssssuuuuuuuuuuuvvs').padded('t', 32).padded('ntls', 32).padded('model', 16).padded('0001', 16)
      .u64(0x40d).u64(0).u64(1).u64(0).u64(0).u64(255).u64(4)
      .u64(0xffffffffffffffffn).u64(0xffffffffffffffffn).u64(0xffffffffffffffffn).u64(0xffffffffffffffffn)
      .u8(1).u8(0).u8(1).u8(0).padded('', 16).build();
    const r = value(decodeResponse(b, 'C_GetTokenInfo')) as Extract<P11KitResponse, { call: 'C_GetTokenInfo' }>;
    expect(r.args.label).toBe('t');
    expect(r.args.totalPublicMemory).toBe(-1);
    expect(r.args.utcTime).toBe('');
    expect(value(encodeResponse(r))).toEqual(b);
  });

  it('refuses a space-padded string that does not fit its field', () => {
    const r = encodeResponse(response('C_GetSlotInfo', { slotDescription: 'x'.repeat(65), manufacturerId: '', flags: 0, hardwareVersion: { major: 0, minor: 0 }, firmwareVersion: { major: 0, minor: 0 } }));
    expect(errorOf(r).code).toBe(P11KitErrorCode.Unencodable);
  });

  it('output arrays: data, or the length only (ay, au)', () => {
    const data = bytes().head(43, 'ay').ay('sig').build();
    const len = bytes().head(43, 'ay').ayNull(256).build();
    expect(value(encodeResponse(response('C_Sign', { signature: Buffer.from('sig') })))).toEqual(data);
    expect(value(encodeResponse(response('C_Sign', { signature: lengthOnly(256) })))).toEqual(len);
    expect(value(decodeResponse(len, 'C_Sign'))).toEqual({ call: 'C_Sign', args: { signature: lengthOnly(256) } });
    const slots = bytes().head(4, 'au').u8(1).u32(2).u64(0x11).u64(0x12).build();
    expect(value(decodeResponse(slots, 'C_GetSlotList'))).toEqual({ call: 'C_GetSlotList', args: { slotList: [0x11, 0x12] } });
    expect(value(encodeResponse(response('C_GetSlotList', { slotList: lengthOnly(2) })))).toEqual(bytes().head(4, 'au').u8(0).u32(2).build());
  });

  it('answerOutput follows the length-query semantics of p11-kit\'s server', () => {
    const sig = Buffer.alloc(256, 1);
    expect(answerOutput({ query: true, capacity: 0 }, sig)).toEqual(lengthOnly(256));
    expect(answerOutput({ query: false, capacity: 255 }, sig)).toEqual(lengthOnly(256));
    expect(answerOutput({ query: false, capacity: 256 }, sig)).toBe(sig);
    expect(answerOutput({ query: false, capacity: 10 }, [1, 2])).toEqual([1, 2]);
  });

  it('C_GetAttributeValue answer (aAu): values, size-only, unavailable, and the call result', () => {
    const body = bytes().head(24, 'aAu').u32(4)
      .raw(attrBytes(CKA.LABEL, 3, bytes().arr('rsa').build()))
      .raw(attrBytes(CKA.MODULUS, 256, bytes().nullArr().build()))
      .raw(bytes().u32(CKA.PRIVATE_EXPONENT).u8(0).build())
      .raw(attrBytes(CKA.SENSITIVE, 1, Buffer.from([0])))
      .u64(CKR.ATTRIBUTE_SENSITIVE).build();
    const resp = response('C_GetAttributeValue', {
      template: [attr.bytes(CKA.LABEL, 'rsa'), attr.sizeOnly(CKA.MODULUS, 256), attr.unavailable(CKA.PRIVATE_EXPONENT), attr.sizeOnly(CKA.SENSITIVE, 1)],
      result: CKR.ATTRIBUTE_SENSITIVE,
    });
    expect(value(encodeResponse(resp))).toEqual(body);
    const back = value(decodeResponse(body, 'C_GetAttributeValue')) as Extract<P11KitResponse, { call: 'C_GetAttributeValue' }>;
    expect(back.args.template[1]).toEqual({ type: CKA.MODULUS, value: null, length: 256 });
    expect(back.args.template[2]).toEqual({ type: CKA.PRIVATE_EXPONENT, value: null, length: -1 });
    expect(back.args.result).toBe(CKR.ATTRIBUTE_SENSITIVE);
  });

  it('ERROR answers', () => {
    const body = bytes().head(0, 'u').u64(CKR.PIN_INCORRECT).build();
    expect(encodeErrorResponse(CKR.PIN_INCORRECT)).toEqual(body);
    expect(value(decodeResponse(body, 'C_Login'))).toEqual({ call: 'ERROR', args: { rv: CKR.PIN_INCORRECT } });
    expect(errorOf(decodeResponse(bytes().head(0, 'u').u64(0).build(), 'C_Login')).code).toBe(P11KitErrorCode.BadValue);
  });

  it('an answer to another call is refused', () => {
    expect(errorOf(decodeResponse(bytes().head(19, '').build(), 'C_Login')).code).toBe(P11KitErrorCode.CallMismatch);
  });

  it('C_DeriveKey2 answer (uPu): the P element depends on the mechanism', () => {
    const ecdh = { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1' as const, kdf: 1, sharedData: null, publicData: Buffer.alloc(65, 4) } };
    const withP = bytes().head(89, 'uPu').u64(0).u8(1).u64(42).build();
    expect(value(encodeResponse(response('C_DeriveKey2', { result: 0, parameterUpdate: parameterUpdateFor(ecdh), key: 42 })))).toEqual(withP);
    expect(value(decodeResponse(withP, 'C_DeriveKey2', { version: 2, mechanismType: CKM.ECDH1_DERIVE }))).toEqual({
      call: 'C_DeriveKey2', args: { result: 0, parameterUpdate: { hasParameter: true }, key: 42 },
    });
    const noP = bytes().head(89, 'uPu').u64(0).u64(42).build();
    const sha = { type: 0x393 /* CKM_SHA256_KEY_DERIVATION */, parameter: null };
    expect(value(encodeResponse(response('C_DeriveKey2', { result: 0, parameterUpdate: parameterUpdateFor(sha), key: 42 })))).toEqual(noP);
    expect(value(decodeResponse(noP, 'C_DeriveKey2', { mechanismType: 0x393 }))).toEqual({ call: 'C_DeriveKey2', args: { result: 0, parameterUpdate: null, key: 42 } });
  });
});

describe('token values on the wire', () => {
  it('a CK_BBOOL or CK_ULONG attribute p11-kit 0.24.1 types as bytes travels as its bytes (it was CKR_GENERAL_ERROR)', () => {
    expect(wireValue(CKA.DESTROYABLE, false)).toEqual({ kind: 'bytes', value: Buffer.from([0]) });
    expect(wireValue(CKA.NAME_HASH_ALGORITHM, CKM.SHA256)).toEqual({ kind: 'bytes', value: Buffer.from('5002000000000000', 'hex') });
    expect(wireValue(CKA.SIGN, true)).toEqual({ kind: 'byte', value: 1 });
    const body = value(encodeResponse(response('C_GetAttributeValue', {
      template: wireResults([{ type: CKA.DESTROYABLE, value: true, length: 1 }, { type: CKA.MODIFIABLE, value: false, length: 1 }]), result: CKR.OK,
    })));
    const decoded = value(decodeResponse(body, 'C_GetAttributeValue'));
    expect(decoded.args).toEqual({
      template: [{ type: CKA.DESTROYABLE, value: { kind: 'bytes', value: Buffer.from([1]) }, length: 1 }, { type: CKA.MODIFIABLE, value: { kind: 'byte', value: 0 }, length: 1 }],
      result: CKR.OK,
    });
  });
});
