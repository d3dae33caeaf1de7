// Requests whose answer would be many times their own size: one C_GetAttributeValue naming the
// same large value thousands of times. The answer is bounded by `datapath.maxFrameBytes` (the
// largest output one call may make); beyond it the call is CKR_DEVICE_MEMORY and the link serves
// on. Each type a template names is read once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKO, CKR } from '../../src/pkcs11/constants.js';
import { attr, request } from '../../src/protocol/p11kit/index.js';
import { ProcessorHarness, type HarnessLink } from '../support/processor-harness.js';
import { call, initialize } from '../support/p11kit.js';

const MAX_FRAME = 1024 * 1024;
const VALUE_BYTES = 4096;

let harness: ProcessorHarness;
let link: HarnessLink;
let session: number;
let object: number;

beforeAll(async () => {
  harness = await ProcessorHarness.start({ config: { hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0, maxFrameBytes: MAX_FRAME } } });
  harness.register('greedy');
  await harness.assign('greedy', 'default');
  link = await harness.connect('greedy');
  await initialize(link);
  expect((await call(link, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'bounds' }))).rv).toBe(CKR.OK);
  session = (await call(link, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }))).args.session as number;
  // A public session object: its value is readable without a login.
  const made = await call(link, request('C_CreateObject', {
    session, template: [attr.ulong(CKA.CLASS, CKO.DATA), attr.bool(CKA.TOKEN, false), attr.bool(CKA.PRIVATE, false), attr.bytes(CKA.VALUE, Buffer.alloc(VALUE_BYTES, 7))],
  }));
  expect(made.rv).toBe(CKR.OK);
  object = made.args.object as number;
});

afterAll(async () => {
  await harness?.stop();
});

const valueTimes = (n: number) => request('C_GetAttributeValue', {
  session, object, template: Array.from({ length: n }, () => ({ type: CKA.VALUE, length: 0xffffffff })),
});

describe('the answer of C_GetAttributeValue', () => {
  it('names one 4 KiB value 1,000 times (a 4 MB answer from an 8 KB request, over a 1 MiB frame bound): CKR_DEVICE_MEMORY', async () => {
    const r = await call(link, valueTimes(1000));
    expect(r.rv).toBe(CKR.DEVICE_MEMORY);
  });

  it('the link serves on, and a template naming the value 100 times (400 KiB) gets it 100 times', async () => {
    const r = await call(link, valueTimes(100));
    expect(r.rv).toBe(CKR.OK);
    const template = r.args.template as Array<{ value: { value: Buffer } }>;
    expect(template).toHaveLength(100);
    for (const entry of template) expect(entry.value.value).toEqual(Buffer.alloc(VALUE_BYTES, 7));
    const small = await call(link, request('C_GetAttributeValue', { session, object, template: [{ type: CKA.CLASS, length: 8 }] }));
    expect(small.rv).toBe(CKR.OK);
  });

  it('lengths only (a NULL value) are not bounded by the values: 1,000 entries answer their length', async () => {
    const r = await call(link, request('C_GetAttributeValue', {
      session, object, template: Array.from({ length: 1000 }, () => ({ type: CKA.VALUE, length: 0 })),
    }));
    expect(r.rv).toBe(CKR.OK);
    expect(r.args.template as unknown[]).toHaveLength(1000);
  });
});
