import { FrameParser } from '../../support/frame-parser.js';
import { describe, expect, it } from 'vitest';
import { CKM, CKR } from '../../../src/pkcs11/constants.js';
import { P11KitClientCodec, P11KitErrorCode, request, responseRv } from '../../../src/protocol/p11kit/index.js';
import { bytes, frameBytes } from './fixture-writer.js';

function parse(b: Buffer) {
  const r = new FrameParser().push(b);
  expect(r.error).toBeNull();
  return r.frames[0]!;
}

describe('P11KitClientCodec', () => {
  it('numbers frames from 16, sends its options, and pairs answers with requests', () => {
    const c = new P11KitClientCodec({ version: 0, options: Buffer.from('client') });
    const a = c.request(request('C_CloseSession', { session: 7 }));
    const b = c.request(request('C_Logout', { session: 7 }));
    if (!a.ok || !b.ok) throw new Error('encode failed');
    expect([a.value.callCode, b.value.callCode]).toEqual([16, 17]);
    expect(a.value.bytes).toEqual(frameBytes(16, bytes().head(11, 'u').u64(7).build(), Buffer.from('client')));
    expect(c.inFlight).toBe(2);
    // Answers may come in any order; each decodes against its own call.
    const second = c.response(parse(frameBytes(17, bytes().head(0, 'u').u64(CKR.USER_NOT_LOGGED_IN).build())));
    expect(second.ok && responseRv(second.value)).toBe(CKR.USER_NOT_LOGGED_IN);
    const first = c.response(parse(frameBytes(16, bytes().head(11, '').build())));
    expect(first.ok && first.value).toEqual({ call: 'C_CloseSession', args: {} });
    expect(c.inFlight).toBe(0);
  });

  it('refuses answers to codes never sent, and code 0', () => {
    const c = new P11KitClientCodec({ version: 0 });
    const r = c.response(parse(frameBytes(99, bytes().head(11, '').build())));
    expect(!r.ok && r.error.code).toBe(P11KitErrorCode.CallMismatch);
    const z = c.response(parse(frameBytes(0, bytes().head(11, '').build())));
    expect(!z.ok && z.error.code).toBe(P11KitErrorCode.BadHeader);
  });

  it('remembers the mechanism of C_DeriveKey2 to decode its answer', () => {
    const c = new P11KitClientCodec({ version: 2 });
    const mech = { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1' as const, kdf: 1, sharedData: null, publicData: Buffer.alloc(65, 4) } };
    const sent = c.request(request('C_DeriveKey2', { session: 1, mechanism: mech, baseKey: 2, template: [] }));
    if (!sent.ok) throw sent.error;
    const answer = c.response(parse(frameBytes(sent.value.callCode, bytes().head(89, 'uPu').u64(0).u8(1).u64(3).build())));
    expect(answer.ok && answer.value).toEqual({ call: 'C_DeriveKey2', args: { result: 0, parameterUpdate: { hasParameter: true }, key: 3 } });
  });

  it('an encoding failure is a value and sends nothing', () => {
    const c = new P11KitClientCodec({ version: 0 });
    const r = c.request(request('C_SignInit', { session: 1, mechanism: { type: CKM.AES_CBC, parameter: { kind: 'bytes', value: Buffer.alloc(3) } }, key: 2 }));
    expect(!r.ok && r.error.code).toBe(P11KitErrorCode.Unencodable);
    expect(c.inFlight).toBe(0);
  });
});
