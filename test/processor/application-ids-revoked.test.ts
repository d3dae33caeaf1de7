// A persistent application id (NTLS OpenAccess) outlives its client's links, with its sessions and
// login. What the client loses meanwhile, its ids lose too:
//   - a partition revoked while the client is disconnected: the id's sessions there end (before,
//     the client reattached the id and went on encrypting and making token keys as CO);
//   - the client removed from the registry: its ids end (before, a new client registered later
//     under the same name inherited them, logged in);
//   - the local socket's ids are the operator's: a TLS client registered as "local" has its own.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { attr, outputRequest, request } from '../../src/protocol/p11kit/index.js';
import { ProcessorHarness, type HarnessLink } from '../support/processor-harness.js';
import { call, initialize } from '../support/p11kit.js';

const APP = { major: 0xb43, minor: 1 };

let harness: ProcessorHarness;

beforeEach(async () => {
  harness = await ProcessorHarness.start({ config: { hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0 } } });
  harness.register('alice');
  await harness.assign('alice', 'default');
  const l = await link('alice');
  expect((await call(l, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'appids' }))).rv).toBe(CKR.OK);
  const so = (await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }))).args.session as number;
  expect((await call(l, request('C_Login', { session: so, userType: CKU.SO, pin: Buffer.from('so-pin-1') }))).rv).toBe(CKR.OK);
  expect((await call(l, request('C_InitPIN', { session: so, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
  await l.close();
});

afterEach(async () => {
  await harness?.stop();
});

async function link(client: string, local = false): Promise<HarnessLink> {
  const l = await harness.connect(client, { local });
  await initialize(l);
  return l;
}

/** Under the persistent id: a session logged in as CO holding a token AES key; the link then closes. */
async function loggedInPersistentSession(client: string, local = false): Promise<{ session: number; key: number }> {
  const l = await link(client, local);
  expect((await call(l, request('NTLS_OpenAccess', APP))).rv).toBe(CKR.OK);
  const session = (await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }))).args.session as number;
  expect((await call(l, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
  const made = await call(l, request('C_GenerateKey', {
    session, mechanism: { type: CKM.AES_KEY_GEN, parameter: null }, template: [attr.ulong(CKA.VALUE_LEN, 32), attr.bool(CKA.TOKEN, true)],
  }));
  expect(made.rv).toBe(CKR.OK);
  await l.close();
  return { session, key: made.args.key as number };
}

async function useSession(l: HarnessLink, session: number, key: number): Promise<number[]> {
  const init = await call(l, request('C_EncryptInit', { session, mechanism: { type: CKM.AES_ECB, parameter: null }, key }));
  const generate = await call(l, request('C_GenerateKey', {
    session, mechanism: { type: CKM.AES_KEY_GEN, parameter: null }, template: [attr.ulong(CKA.VALUE_LEN, 16), attr.bool(CKA.TOKEN, true)],
  }));
  const find = await call(l, request('C_FindObjectsInit', { session, template: [] }));
  return [init.rv, generate.rv, find.rv];
}

describe('a persistent application id', () => {
  it('keeps its logged-in session while its partition stays assigned (the id works as designed)', async () => {
    const { session, key } = await loggedInPersistentSession('alice');
    const l = await link('alice');
    expect((await call(l, request('NTLS_SetApplicationId', APP))).rv).toBe(CKR.OK);
    expect(await useSession(l, session, key)).toEqual([CKR.OK, CKR.OK, CKR.OK]);
  });

  it('loses its sessions on a partition revoked while the client was away', async () => {
    const { session, key } = await loggedInPersistentSession('alice');
    await harness.revoke('alice', 'default');
    const l = await link('alice');
    expect((await call(l, request('NTLS_SetApplicationId', APP))).rv).toBe(CKR.OK);
    expect(await useSession(l, session, key)).toEqual([CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID]);
    // Assigned again, the partition wants a login again.
    await harness.assign('alice', 'default');
    const s = (await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }))).args.session as number;
    expect((await call(l, request('C_GetSessionInfo', { session: s }))).args.state).toBe(0); // CKS_RO_PUBLIC_SESSION
  });

  it('ends when its client is removed: a client registered later under the name starts with nothing', async () => {
    const { session, key } = await loggedInPersistentSession('alice');
    harness.remove('alice');
    expect(await harness.admin('processor.application-ids')).toEqual([]);
    harness.register('alice');
    const l = await link('alice');
    expect((await call(l, request('NTLS_SetApplicationId', APP))).rv).toBe(CKR.OK);
    expect(await useSession(l, session, key)).toEqual([CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID]);
  });

  it('of the local socket is not the id of a TLS client registered as "local"', async () => {
    const { session, key } = await loggedInPersistentSession('local', true);
    harness.register('local');
    const l = await link('local');
    expect((await call(l, request('NTLS_SetApplicationId', APP))).rv).toBe(CKR.OK);
    expect(await useSession(l, session, key)).toEqual([CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_HANDLE_INVALID]);
    const slots = await call(l, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(8) }));
    expect(slots.args.slotList).toEqual([]);
    // The operator's session is whole.
    const operator = await link('local', true);
    expect((await call(operator, request('NTLS_SetApplicationId', APP))).rv).toBe(CKR.OK);
    expect(await useSession(operator, session, key)).toEqual([CKR.OK, CKR.OK, CKR.OK]);
  });
});
