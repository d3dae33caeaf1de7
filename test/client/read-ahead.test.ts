// The relay's attribute read-ahead as a state machine (src/client/read-ahead.ts): which reads
// go to the server, which are answered from the burst's snapshot, and that the answers are
// the server's (size queries, buffers too small, attributes not held).
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relayFrames } from '../../src/client/relay.js';
import { FrameReader, serializeFrame, type Frame } from '../../src/protocol/frame.js';
import { AttributeReadAhead, READ_AHEAD_MAX_AGE_MS, READ_AHEAD_TYPES, type ReadAheadPlan } from '../../src/client/read-ahead.js';
import { CKA, CKO, CKR } from '../../src/pkcs11/constants.js';
import {
  attr, decodeRequest, decodeResponse, encodeErrorResponse, encodeRequest, encodeResponse, request, response,
  type Attribute, type AttributeRequest,
} from '../../src/protocol/p11kit/index.js';

const SESSION = 3;
const OBJECT = 7;

function read(template: AttributeRequest[], object = OBJECT, session = SESSION): Buffer {
  const body = encodeRequest(request('C_GetAttributeValue', { session, object, template }));
  if (!body.ok) throw body.error;
  return body.value;
}

function other(): Buffer {
  const body = encodeRequest(request('C_GetSessionInfo', { session: SESSION }));
  if (!body.ok) throw body.error;
  return body.value;
}

/** What the server answers to the read-ahead: the object's attributes it has; the rest unavailable. */
function serverAnswer(fetch: Buffer, object: Attribute[]): Buffer {
  const decoded = decodeRequest(fetch);
  if (!decoded.ok || decoded.value.call !== 'C_GetAttributeValue') throw new Error('not a read');
  let result: number = CKR.OK;
  const template = decoded.value.args.template.map((asked): Attribute => {
    const found = object.find((a) => a.type === asked.type);
    if (!found) {
      if (result === CKR.OK) result = CKR.ATTRIBUTE_TYPE_INVALID;
      return { type: asked.type, value: null, length: -1 };
    }
    return found;
  });
  const body = encodeResponse(response('C_GetAttributeValue', { template, result }));
  if (!body.ok) throw body.error;
  return body.value;
}

function answered(plan: ReadAheadPlan): { template: Attribute[]; result: number } {
  if (plan.kind !== 'answer') throw new Error(`expected an answer, got ${plan.kind}`);
  const decoded = decodeResponse(plan.body, 'C_GetAttributeValue');
  if (!decoded.ok || decoded.value.call !== 'C_GetAttributeValue') throw new Error('bad answer');
  return decoded.value.args;
}

const KEY: Attribute[] = [
  attr.ulong(CKA.CLASS, CKO.PUBLIC_KEY), attr.bytes(CKA.LABEL, Buffer.from('key one')), attr.bytes(CKA.ID, Buffer.from([1, 2])),
  attr.bool(CKA.VERIFY, true), attr.bytes(CKA.EC_POINT, Buffer.alloc(67, 4)),
];

/** A read-ahead whose clock the test moves; the burst fetched after reading CKA_CLASS then CKA_LABEL's size. */
function afterFetch(): { readAhead: AttributeReadAhead; clock: { t: number } } {
  const clock = { t: 1000 };
  const readAhead = new AttributeReadAhead(READ_AHEAD_MAX_AGE_MS, () => clock.t);
  expect(readAhead.plan(read([{ type: CKA.CLASS, length: 8 }]), 0).kind).toBe('forward');
  const plan = readAhead.plan(read([{ type: CKA.LABEL, length: 0 }]), 0);
  if (plan.kind !== 'fetch') throw new Error(`expected a fetch, got ${plan.kind}`);
  const local = plan.then(serverAnswer(plan.body, KEY));
  const decoded = decodeResponse(local!, 'C_GetAttributeValue');
  expect(decoded.ok && decoded.value.call === 'C_GetAttributeValue' && decoded.value.args).toEqual({
    template: [{ type: CKA.LABEL, value: null, length: 7 }], result: CKR.OK,
  });
  return { readAhead, clock };
}

describe('attribute read-ahead', () => {
  it('reads once from the server on the second read of one object, asking what a listing prints and what was asked', () => {
    const readAhead = new AttributeReadAhead();
    expect(readAhead.plan(read([{ type: CKA.CLASS, length: 8 }]), 0).kind).toBe('forward');
    const plan = readAhead.plan(read([{ type: CKA.VALUE, length: 0 }]), 0);
    if (plan.kind !== 'fetch') throw new Error(plan.kind);
    const decoded = decodeRequest(plan.body);
    if (!decoded.ok || decoded.value.call !== 'C_GetAttributeValue') throw new Error('not a read');
    const types = decoded.value.args.template.map((r) => r.type);
    expect(types[0]).toBe(CKA.VALUE);
    expect(new Set(types)).toEqual(new Set([CKA.VALUE, ...READ_AHEAD_TYPES]));
    expect(decoded.value.args).toMatchObject({ session: SESSION, object: OBJECT });
  });

  it('never reads ahead the values that are secret by nature', () => {
    for (const secret of [CKA.VALUE, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT, CKA.WRAP_TEMPLATE, CKA.UNWRAP_TEMPLATE]) {
      expect(READ_AHEAD_TYPES).not.toContain(secret);
    }
  });

  it('answers the burst from the snapshot as the server would: values, sizes, buffers too small', () => {
    const { readAhead } = afterFetch();
    expect(answered(readAhead.plan(read([{ type: CKA.LABEL, length: 7 }]), 0))).toEqual({
      template: [{ type: CKA.LABEL, value: { kind: 'bytes', value: Buffer.from('key one') }, length: 7 }], result: CKR.OK,
    });
    expect(answered(readAhead.plan(read([{ type: CKA.VERIFY, length: 1 }, { type: CKA.CLASS, length: 8 }]), 0))).toEqual({
      template: [{ type: CKA.VERIFY, value: { kind: 'byte', value: 1 }, length: 1 }, { type: CKA.CLASS, value: { kind: 'ulong', value: CKO.PUBLIC_KEY }, length: 8 }],
      result: CKR.OK,
    });
    // The first failure is the call's; later attributes are still filled in.
    expect(answered(readAhead.plan(read([{ type: CKA.EC_POINT, length: 10 }, { type: CKA.ID, length: 2 }]), 0))).toEqual({
      template: [{ type: CKA.EC_POINT, value: null, length: -1 }, { type: CKA.ID, value: { kind: 'bytes', value: Buffer.from([1, 2]) }, length: 2 }],
      result: CKR.BUFFER_TOO_SMALL,
    });
  });

  it('sends on a read of an attribute the server did not give (its reason is the server\'s to say)', () => {
    const { readAhead } = afterFetch();
    expect(readAhead.plan(read([{ type: CKA.UNIQUE_ID, length: 0 }]), 0).kind).toBe('forward');
    expect(readAhead.plan(read([{ type: CKA.LABEL, length: 0 }, { type: CKA.VALUE, length: 0 }]), 0).kind).toBe('forward');
    // The snapshot still answers what it holds.
    expect(readAhead.plan(read([{ type: CKA.ID, length: 0 }]), 0).kind).toBe('answer');
  });

  it('ends the burst at any other call, so the program\'s own changes are seen by its next read', () => {
    const { readAhead } = afterFetch();
    expect(readAhead.plan(other(), 0).kind).toBe('forward');
    expect(readAhead.plan(read([{ type: CKA.LABEL, length: 0 }]), 0).kind).toBe('forward');
  });

  it('ends the burst at a read of another object or session', () => {
    const { readAhead } = afterFetch();
    expect(readAhead.plan(read([{ type: CKA.LABEL, length: 0 }], OBJECT + 1), 0).kind).toBe('forward');
    expect(readAhead.plan(read([{ type: CKA.LABEL, length: 0 }], OBJECT), 0).kind).toBe('forward');
    const second = afterFetch().readAhead;
    expect(second.plan(read([{ type: CKA.LABEL, length: 0 }], OBJECT, SESSION + 1), 0).kind).toBe('forward');
  });

  it('reads again from the server once the snapshot is older than the burst may last', () => {
    const { readAhead, clock } = afterFetch();
    clock.t += READ_AHEAD_MAX_AGE_MS;
    expect(readAhead.plan(read([{ type: CKA.ID, length: 0 }]), 0).kind).toBe('answer');
    clock.t += 1;
    expect(readAhead.plan(read([{ type: CKA.ID, length: 0 }]), 0).kind).toBe('fetch');
  });

  it('sends the program\'s read as it came when the server refuses the read-ahead', () => {
    const readAhead = new AttributeReadAhead();
    readAhead.plan(read([{ type: CKA.CLASS, length: 8 }]), 0);
    const plan = readAhead.plan(read([{ type: CKA.LABEL, length: 0 }]), 0);
    if (plan.kind !== 'fetch') throw new Error(plan.kind);
    expect(plan.then(encodeErrorResponse(CKR.OBJECT_HANDLE_INVALID))).toBeNull();
    expect(plan.then(Buffer.from([1, 2, 3]))).toBeNull();
    // Nothing was kept: the next read asks the server again.
    expect(readAhead.plan(read([{ type: CKA.LABEL, length: 0 }]), 0).kind).toBe('fetch');
  });

  it('keeps no snapshot from a read-ahead overlapped by another call (threads of one program)', () => {
    const readAhead = new AttributeReadAhead();
    readAhead.plan(read([{ type: CKA.CLASS, length: 8 }]), 0);
    const plan = readAhead.plan(read([{ type: CKA.LABEL, length: 0 }]), 0);
    if (plan.kind !== 'fetch') throw new Error(plan.kind);
    readAhead.interrupt();
    // The read that asked is still answered from what the server said then...
    expect(plan.then(serverAnswer(plan.body, KEY))).not.toBeNull();
    // ...but what another thread may have changed meanwhile is read from the server.
    expect(readAhead.plan(read([{ type: CKA.ID, length: 0 }]), 0).kind).toBe('forward');
  });

  it('passes on what it cannot read', () => {
    const readAhead = new AttributeReadAhead();
    expect(readAhead.plan(Buffer.from([0, 0, 0, 24, 1]), 0).kind).toBe('forward');
    expect(readAhead.plan(Buffer.alloc(2), 0).kind).toBe('forward');
  });
});

describe('the relay with read-ahead, on streams', () => {
  function framesIn(bytes: Buffer): { version: number; frames: Frame[] } {
    const reader = new FrameReader(1 << 20);
    reader.push(bytes);
    const version = reader.takeByte()!;
    const frames: Frame[] = [];
    let frame: Frame | null;
    while ((frame = reader.next())) frames.push(frame);
    return { version, frames };
  }
  const collect = (stream: PassThrough): Buffer[] => {
    const seen: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => seen.push(chunk));
    return seen;
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('sends the calls of several threads on at once and passes their answers back in the server\'s order', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const toServer = new PassThrough();
    const fromServer = new PassThrough();
    const link = Duplex.from({ readable: fromServer, writable: toServer });
    const sent = collect(toServer);
    const received = collect(output);
    relayFrames(input, output, link, Buffer.alloc(0));
    // Two threads read the same object at once: the second read overlaps the first, so no read-ahead.
    const first = { callCode: 1, options: Buffer.alloc(0), body: read([{ type: CKA.CLASS, length: 8 }]) };
    const second = { callCode: 2, options: Buffer.alloc(0), body: read([{ type: CKA.LABEL, length: 0 }]) };
    input.write(Buffer.concat([Buffer.from([0]), serializeFrame(first), serializeFrame(second)]));
    await settle();
    const upstream = framesIn(Buffer.concat(sent));
    expect(upstream.version).toBe(0);
    expect(upstream.frames.map((f) => [f.callCode, f.body])).toEqual([[1, first.body], [2, second.body]]);
    expect(received).toEqual([]);
    const answer = (callCode: number, template: Attribute[]) => {
      const body = encodeResponse(response('C_GetAttributeValue', { template, result: CKR.OK }));
      if (!body.ok) throw body.error;
      return serializeFrame({ callCode, options: Buffer.alloc(0), body: body.value });
    };
    fromServer.write(Buffer.concat([Buffer.from([0]), answer(2, [{ type: CKA.LABEL, value: null, length: 7 }]), answer(1, [KEY[0]!])]));
    await settle();
    const downstream = framesIn(Buffer.concat(received));
    expect(downstream.frames.map((f) => f.callCode)).toEqual([2, 1]);
  });
});
