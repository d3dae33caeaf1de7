// The codec against bytes captured from the real tools (Debian bookworm: pkcs11-tool 0.23.0,
// p11-kit-client.so and p11-kit server 0.24.1, SoftHSM 2.6.1): every real request and answer
// decodes, re-encodes to the same bytes, and carries what the scenario did.

import { FrameParser } from '../../support/frame-parser.js';
import { describe, expect, it } from 'vitest';
import { CKA, CKG, CKM, CKR } from '../../../src/pkcs11/constants.js';
import {
  P11KIT_HANDSHAKE, isLengthOnly, type P11KitRequest, type P11KitResponse,
} from '../../../src/protocol/p11kit/index.js';
import { loadCaptures, roundTrip, type DecodedExchange } from './captured.js';
import { frameBytes } from './fixture-writer.js';

const captures = loadCaptures();
const byName = new Map(captures.map((c) => [c.scenario, c]));

function decoded(scenario: string): DecodedExchange[] {
  const c = byName.get(scenario);
  if (!c) throw new Error(`no capture ${scenario}`);
  return roundTrip(c.sessions[0]!, scenario);
}

function find<N extends P11KitRequest['call']>(ex: DecodedExchange[], call: N): { request: Extract<P11KitRequest, { call: N }>; response: P11KitResponse }[] {
  return ex.filter((e) => e.request.call === call) as never;
}

describe('captured p11-kit 0.24.1 traffic', () => {
  it('has the scenarios', () => {
    expect(captures.length).toBeGreaterThanOrEqual(20);
  });

  for (const c of captures) {
    it(`${c.scenario}: every request and answer decodes and re-encodes byte for byte`, () => {
      expect(c.sessions.length).toBeGreaterThan(0);
      for (const s of c.sessions) {
        expect([s.clientVersion, s.serverVersion]).toEqual([0, 0]);
        roundTrip(s, c.scenario);
      }
    });
  }

  it('the frame parser splits the real client stream, module name in the options', () => {
    const s = byName.get('list-objects')!.sessions[0]!;
    const stream = Buffer.concat(s.exchanges.map((e) => frameBytes(e.request.code, Buffer.from(e.request.body, 'hex'), Buffer.from(e.request.options, 'hex'))));
    const p = new FrameParser();
    const frames = [];
    for (let i = 0; i < stream.length; i += 37) frames.push(...p.push(stream.subarray(i, i + 37)).frames);
    expect(frames.map((f) => f.callCode)).toEqual(s.exchanges.map((e) => e.request.code));
    expect(frames[0]!.options.toString()).toBe('client');
    expect(frames.map((f) => f.body.toString('hex'))).toEqual(s.exchanges.map((e) => e.request.body));
  });

  it('list-slots: initialize handshake, slot list query then fetch, SoftHSM token info', () => {
    const ex = decoded('list-slots');
    expect(ex.map((e) => e.request.call)).toEqual([
      'C_Initialize', 'C_GetSlotList', 'C_GetSlotList', 'C_GetSlotInfo', 'C_GetTokenInfo', 'C_GetSlotInfo', 'C_GetTokenInfo', 'C_Finalize',
    ]);
    const init = find(ex, 'C_Initialize')[0]!.request;
    expect(init.args.handshake).toEqual(P11KIT_HANDSHAKE);
    const [query, fetch] = find(ex, 'C_GetSlotList');
    expect(query!.request.args.slotList).toEqual({ query: true, capacity: 0 });
    expect(query!.response).toEqual({ call: 'C_GetSlotList', args: { slotList: { kind: 'length', length: 2 } } });
    expect(fetch!.request.args.slotList.capacity).toBe(2);
    const slots = (fetch!.response as Extract<P11KitResponse, { call: 'C_GetSlotList' }>).args.slotList;
    expect(Array.isArray(slots) && slots.length).toBe(2);
    const token = find(ex, 'C_GetTokenInfo')[0]!.response as Extract<P11KitResponse, { call: 'C_GetTokenInfo' }>;
    expect(token.args.label).toBe('t');
    expect(token.args.manufacturerId).toBe('SoftHSM project');
    expect(token.args.model).toBe('SoftHSM v2');
    expect(token.args.minPinLen).toBe(4);
    expect(token.args.maxPinLen).toBe(255);
  });

  it('info: C_GetInfo answer', () => {
    const info = find(decoded('info'), 'C_GetInfo')[0]!.response as Extract<P11KitResponse, { call: 'C_GetInfo' }>;
    expect(info.args.manufacturerId).toBe('PKCS#11 Kit'); // p11-kit server answers C_GetInfo itself
    expect(info.args.cryptokiVersion.major).toBe(2);
  });

  it('list-mechanisms: mechanism list and infos', () => {
    const ex = decoded('list-mechanisms');
    const lists = find(ex, 'C_GetMechanismList');
    const list = lists[1]!.response as Extract<P11KitResponse, { call: 'C_GetMechanismList' }>;
    expect(Array.isArray(list.args.mechanismList) && list.args.mechanismList).toContain(CKM.SHA256_RSA_PKCS);
    const infos = find(ex, 'C_GetMechanismInfo');
    expect(infos.length).toBeGreaterThan(10);
    expect(infos.every((i) => i.response.call === 'C_GetMechanismInfo')).toBe(true);
  });

  it('login-wrong-pin: the ERROR answer carries CKR_PIN_INCORRECT', () => {
    const login = find(decoded('login-wrong-pin'), 'C_Login')[0]!;
    expect(login.request.args.pin).toEqual(Buffer.from('9999'));
    expect(login.response).toEqual({ call: 'ERROR', args: { rv: CKR.PIN_INCORRECT } });
  });

  it('keygen-ec: template attributes typed as p11-kit types them', () => {
    const gen = find(decoded('keygen-ec'), 'C_GenerateKeyPair')[0]!;
    expect(gen.request.args.mechanism).toEqual({ type: CKM.EC_KEY_PAIR_GEN, parameter: null });
    const ecParams = gen.request.args.publicKeyTemplate.find((a) => a.type === CKA.EC_PARAMS);
    expect(ecParams?.value).toEqual({ kind: 'bytes', value: Buffer.from('06082a8648ce3d030107', 'hex') });
    const token = gen.request.args.privateKeyTemplate.find((a) => a.type === CKA.TOKEN);
    expect(token?.value).toEqual({ kind: 'byte', value: 1 });
    expect(gen.response.call).toBe('C_GenerateKeyPair');
  });

  it('list-objects: attribute size queries, then values', () => {
    const gets = find(decoded('list-objects'), 'C_GetAttributeValue');
    const sizeQuery = gets.find((g) => g.request.args.template.some((t) => t.length === 0));
    expect(sizeQuery).toBeDefined();
    const answer = sizeQuery!.response as Extract<P11KitResponse, { call: 'C_GetAttributeValue' }>;
    expect(answer.args.template.length).toBe(sizeQuery!.request.args.template.length);
    const withValue = gets.map((g) => g.response).filter((r): r is Extract<P11KitResponse, { call: 'C_GetAttributeValue' }> => r.call === 'C_GetAttributeValue')
      .flatMap((r) => r.args.template).filter((a) => a.type === CKA.LABEL && a.value?.kind === 'bytes');
    expect(withValue.map((a) => (a.value as { value: Buffer }).value.toString())).toEqual(expect.arrayContaining(['rsa1', 'ec1', 'aes1']));
  });

  it('sign-rsa-pss: CKM_RSA_PKCS_PSS with its parameters', () => {
    const ex = decoded('sign-rsa-pss');
    expect(find(ex, 'C_SignInit')[0]!.request.args.mechanism).toEqual({
      type: CKM.RSA_PKCS_PSS, parameter: { kind: 'pss', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 },
    });
    const sign = find(ex, 'C_Sign')[0]!;
    expect(sign.request.args.data).toEqual(Buffer.alloc(32, 0x5a));
    const sig = (sign.response as Extract<P11KitResponse, { call: 'C_Sign' }>).args.signature;
    expect(!isLengthOnly(sig) && sig.length).toBe(256);
  });

  it('decrypt-rsa-oaep: OAEP parameters; SoftHSM\'s refusal travels as an ERROR answer', () => {
    const init256 = find(decoded('decrypt-rsa-oaep-sha256'), 'C_DecryptInit')[0]!;
    expect(init256.request.args.mechanism).toEqual({
      type: CKM.RSA_PKCS_OAEP, parameter: { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: 0, sourceData: null },
    });
    expect(init256.response).toEqual({ call: 'ERROR', args: { rv: CKR.ARGUMENTS_BAD } });
    const ex1 = decoded('decrypt-rsa-oaep-sha1');
    expect(find(ex1, 'C_DecryptInit')[0]!.response.call).toBe('C_DecryptInit');
    expect(find(ex1, 'C_Decrypt')[0]!.response.call).toBe('ERROR');
  });

  it('hash, random, verify, PIN calls', () => {
    const digest = find(decoded('hash-sha256'), 'C_DigestFinal')[0]!.response as Extract<P11KitResponse, { call: 'C_DigestFinal' }>;
    expect(!isLengthOnly(digest.args.digest) && digest.args.digest.length).toBe(32);
    const random = find(decoded('generate-random'), 'C_GenerateRandom')[0]!;
    expect(random.request.args.randomData).toEqual({ query: false, capacity: 32 });
    expect(find(decoded('verify-rsa-pkcs'), 'C_Verify')[0]!.response).toEqual({ call: 'C_Verify', args: {} });
    expect(find(decoded('init-token-slot2'), 'C_InitToken')[0]!.request.args.label.trimEnd()).toBe('second');
    expect(find(decoded('init-pin-slot2'), 'C_InitPIN')[0]!.request.args.pin).toEqual(Buffer.from('5678'));
    const setPin = find(decoded('change-pin-slot2'), 'C_SetPIN')[0]!.request.args;
    expect([setPin.oldPin, setPin.newPin]).toEqual([Buffer.from('5678'), Buffer.from('8765')]);
  });
});
