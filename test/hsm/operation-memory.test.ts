// The input open operations keep (an EdDSA signature needs the whole message; so do raw RSA,
// AES-GCM decryption and key wrap) is counted in one budget for the process
// (hsm.operationMemoryBudget, docs/operations.md "Limits"). Without it, a client opening sessions
// and feeding each 64 MiB of C_SignUpdate could fill the daemon's memory. Past the budget an
// update is CKR_DEVICE_MEMORY and that operation ends; an operation gives its bytes back however
// it ends: finished, failed, its session closed or its partition deleted.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Template } from '../../src/pkcs11/attributes.js';
import { operationMemory } from '../../src/hsm/mechanisms/index.js';
import type { Application as HsmApplication } from '../../src/token/index.js';
import { type Hsm, CO_PIN, RW, mech, readyHsm, removeHome, rv, tempHome } from './support.js';

const MiB = 1024 * 1024;
const BUDGET = 8 * MiB;
const ED25519 = Buffer.from('130c656477617264733235353139', 'hex');
const t = (type: number, value: unknown) => ({ type, value }) as Template[number];

let home: string;
let hsm: Hsm;
let slot: number;
let app: HsmApplication;
let key: number;
let limitBefore: number;

beforeAll(async () => {
  limitBefore = operationMemory.limit;
  operationMemory.limit = BUDGET;
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('a');
  const s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
  key = (await app.C_GenerateKeyPair(s, mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, ED25519)], [t(CKA.SIGN, true)])).privateKey;
});

afterEach(async () => {
  // Every operation of a test has ended by its end: nothing stays counted.
  expect(operationMemory.bytes).toBe(0);
});

afterAll(() => {
  operationMemory.limit = limitBefore;
  hsm?.close();
  if (home) removeHome(home);
});

const chunk = Buffer.alloc(MiB, 1);

async function feed(session: number, mebibytes: number): Promise<void> {
  for (let i = 0; i < mebibytes; i++) await app.C_SignUpdate(session, chunk);
}

describe('hsm.operationMemoryBudget', () => {
  it('sessions together keep no more than the budget: the update past it is CKR_DEVICE_MEMORY and ends that operation only', async () => {
    const first = await app.C_OpenSession(slot, RW);
    const second = await app.C_OpenSession(slot, RW);
    await app.C_SignInit(first, mech(CKM.EDDSA), key);
    await app.C_SignInit(second, mech(CKM.EDDSA), key);
    await feed(first, 6);
    expect(operationMemory.bytes).toBe(6 * MiB);
    await feed(second, 2);
    expect(await rv(() => app.C_SignUpdate(second, chunk))).toBe(CKR.DEVICE_MEMORY);
    // The failed update ended the second operation and gave its 2 MiB back.
    expect(await rv(() => app.C_SignUpdate(second, chunk))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(operationMemory.bytes).toBe(6 * MiB);
    // The first signs its whole 6 MiB message.
    const signature = await app.C_SignFinal(first);
    expect(signature).toHaveLength(64);
    expect(operationMemory.bytes).toBe(0);
    await app.C_CloseSession(first);
    await app.C_CloseSession(second);
  });

  it('one client keeps at most a quarter of the budget: another still has room while the first is full', async () => {
    // The processor makes each client's applications with the client as owner (client-instance.ts, application-ids.ts).
    const owned = async (owner: string) => {
      const application = hsm.application(`${owner}-app`, owner);
      const session = await application.C_OpenSession(slot, RW);
      await application.C_Login(session, CKU.USER, CO_PIN);
      const own = (await application.C_GenerateKeyPair(session, mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, ED25519)], [t(CKA.SIGN, true)])).privateKey;
      await application.C_SignInit(session, mech(CKM.EDDSA), own);
      return { application, session };
    };
    const alice = await owned('alice');
    const bob = await owned('bob');
    await alice.application.C_SignUpdate(alice.session, chunk);
    await alice.application.C_SignUpdate(alice.session, chunk);
    expect(await rv(() => alice.application.C_SignUpdate(alice.session, chunk))).toBe(CKR.DEVICE_MEMORY);
    await bob.application.C_SignUpdate(bob.session, chunk);
    await bob.application.C_SignUpdate(bob.session, chunk);
    expect(await bob.application.C_SignFinal(bob.session)).toHaveLength(64);
    await alice.application.C_CloseSession(alice.session);
    await bob.application.C_CloseSession(bob.session);
  });

  it('a closed session and a failed final give their bytes back', async () => {
    const s = await app.C_OpenSession(slot, RW);
    await app.C_SignInit(s, mech(CKM.EDDSA), key);
    await feed(s, 3);
    await app.C_CloseSession(s);
    expect(operationMemory.bytes).toBe(0);

    const v = await app.C_OpenSession(slot, RW);
    const publicKey = (await app.C_GenerateKeyPair(v, mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, ED25519)], [])).publicKey;
    await app.C_VerifyInit(v, mech(CKM.EDDSA), publicKey);
    await app.C_VerifyUpdate(v, chunk);
    expect(operationMemory.bytes).toBe(MiB);
    // A signature of the wrong length fails the final, which ends the operation.
    expect(await rv(() => app.C_VerifyFinal(v, Buffer.alloc(10)))).toBe(CKR.SIGNATURE_LEN_RANGE);
    expect(operationMemory.bytes).toBe(0);

    // The budget is whole again: 7 MiB fit in one session.
    await app.C_SignInit(v, mech(CKM.EDDSA), key);
    await feed(v, 7);
    await app.C_CloseSession(v);
  });

  it('C_Sign of a message over what the budget leaves is CKR_DEVICE_MEMORY, and the session signs again afterwards', async () => {
    const s = await app.C_OpenSession(slot, RW);
    await app.C_SignInit(s, mech(CKM.EDDSA), key);
    expect(await rv(() => app.C_Sign(s, Buffer.alloc(BUDGET + 1)))).toBe(CKR.DEVICE_MEMORY);
    await app.C_SignInit(s, mech(CKM.EDDSA), key);
    expect(await app.C_Sign(s, Buffer.from('small'))).toHaveLength(64);
    await app.C_CloseSession(s);
  });

  it('an output a length query computed is counted until taken, and the query past the budget is CKR_DEVICE_MEMORY', async () => {
    // AES-ECB: the output is as long as the input; the attacker's probe asked lengths of 4 MiB
    // encryptions on hundreds of sessions, holding gigabytes no budget counted.
    const aesKey = await app.C_GenerateKey(await app.C_OpenSession(slot, RW), mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.ENCRYPT, true)]);
    const sessions: number[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await app.C_OpenSession(slot, RW);
      sessions.push(s);
      await app.C_EncryptInit(s, mech(CKM.AES_ECB), aesKey);
    }
    const block = Buffer.alloc(3 * MiB, 2);
    expect(await app.C_Encrypt(sessions[0]!, block, null)).toHaveLength(3 * MiB);
    expect(await app.C_Encrypt(sessions[1]!, block, null)).toHaveLength(3 * MiB);
    expect(operationMemory.bytes).toBe(6 * MiB);
    // A third would pass the budget: refused, and that operation ends.
    expect(await rv(() => app.C_Encrypt(sessions[2]!, block, null))).toBe(CKR.DEVICE_MEMORY);
    expect(await rv(() => app.C_Encrypt(sessions[2]!, block))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(operationMemory.bytes).toBe(6 * MiB);
    // Taken, the output is given back; a too-small buffer keeps it counted as a length query does.
    expect(await app.C_Encrypt(sessions[0]!, block)).toHaveLength(3 * MiB);
    expect(operationMemory.bytes).toBe(3 * MiB);
    expect(await rv(() => app.C_Encrypt(sessions[3]!, Buffer.alloc(MiB), 16))).toBe(CKR.BUFFER_TOO_SMALL);
    expect(operationMemory.bytes).toBe(4 * MiB);
    // The session closed, or the operation ended by a different call, gives it back too.
    await app.C_CloseSession(sessions[1]!);
    expect(await rv(() => app.C_Encrypt(sessions[3]!, Buffer.alloc(MiB, 9)))).toBe(CKR.FUNCTION_FAILED);
    expect(operationMemory.bytes).toBe(0);
    for (const s of [sessions[0]!, sessions[2]!, sessions[3]!]) await app.C_CloseSession(s);
  });

  it('a wrap whose length was asked is counted until taken or the session is logged out', async () => {
    // An application of its own: its logout must not retire the handles the other tests use.
    const wrapper = hsm.application('wrapper');
    const s = await wrapper.C_OpenSession(slot, RW);
    await wrapper.C_Login(s, CKU.USER, CO_PIN);
    const wrapping = await wrapper.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.WRAP, true)]);
    const secret = await wrapper.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.EXTRACTABLE, true)]);
    expect(await wrapper.C_WrapKey(s, mech(CKM.AES_KEY_WRAP), wrapping, secret, null)).toHaveLength(40);
    expect(operationMemory.bytes).toBe(40);
    await wrapper.C_Logout(s);
    expect(operationMemory.bytes).toBe(0);
    await wrapper.C_CloseSession(s);
  });

  // Last: it deletes the partition the others use.
  it('a partition deleted under open operations gives their bytes back', async () => {
    const s = await app.C_OpenSession(slot, RW);
    await app.C_SignInit(s, mech(CKM.EDDSA), key);
    await feed(s, 2);
    expect(operationMemory.bytes).toBe(2 * MiB);
    await hsm.deletePartition(slot);
    expect(operationMemory.bytes).toBe(0);
  });
});
