// Open searches hold their handles until C_FindObjects hands them out: counted per client and in
// all, so a client opening searches over many objects on many sessions gets CKR_HOST_MEMORY, not
// a daemon that runs out of memory (the attacker's probe grew it 1.3 GB per 1,000 searches).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKO, CKR } from '../../src/pkcs11/constants.js';
import { FindBudget, TokenModel, type Application } from '../../src/token/index.js';
import { readyHsm, removeHome, rv, tempHome } from '../hsm/support.js';

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const label = (text: string) => ({ type: CKA.LABEL, value: Buffer.from(text) });

let home: string;
let model: TokenModel;
let slot: number;
let close: () => unknown;

beforeAll(async () => {
  home = tempHome();
  const ready = await readyHsm(home);
  slot = ready.slot;
  // 4 handles per client, 6 in all.
  model = new TokenModel(ready.hsm.device.libraryInfo, new FindBudget(4, 6));
  model.mountAll(ready.hsm.device);
  close = () => ready.hsm.close();
});
afterAll(async () => {
  await close?.();
  removeHome(home);
});

/** An application of `owner` with three public session objects labelled `mark`, and a session. */
async function withObjects(owner: string, mark: string): Promise<{ app: Application; session: number }> {
  const app = model.application(`${owner}-app`, owner);
  const session = await app.C_OpenSession(slot, RW);
  for (let i = 0; i < 3; i++) await app.C_CreateObject(session, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: false }, label(mark)]);
  return { app, session };
}

describe('the handles open searches hold', () => {
  it('count per client and in all; beyond either, C_FindObjectsInit is CKR_HOST_MEMORY; ending a search or its session gives them back', async () => {
    const x = await withObjects('x', 'fx');
    const second = await x.app.C_OpenSession(slot, RW);
    await x.app.C_FindObjectsInit(x.session, [label('fx')]);
    expect(model.findBudget.held('x')).toBe(3);
    expect(await rv(() => x.app.C_FindObjectsInit(second, [label('fx')]))).toBe(CKR.HOST_MEMORY);
    // A search that failed holds nothing and is not active.
    expect(await rv(() => x.app.C_FindObjects(second, 1))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await x.app.C_FindObjectsFinal(x.session);
    expect(model.findBudget.held('x')).toBe(0);
    await x.app.C_FindObjectsInit(second, [label('fx')]);

    const y = await withObjects('y', 'fy');
    await y.app.C_FindObjectsInit(y.session, [label('fy')]);
    expect(model.findBudget.held()).toBe(6);
    const z = await withObjects('z', 'fz');
    expect(await rv(() => z.app.C_FindObjectsInit(z.session, [label('fz')]))).toBe(CKR.HOST_MEMORY);

    // Handing the handles out does not give them back before the search ends; closing the session does.
    expect(await x.app.C_FindObjects(second, 10)).toHaveLength(3);
    await x.app.C_CloseSession(second);
    expect(model.findBudget.held('x')).toBe(0);
    await z.app.C_FindObjectsInit(z.session, [label('fz')]);
    await z.app.C_SessionCancel(z.session, CKF.FIND_OBJECTS);
    y.app.finalize();
    expect(model.findBudget.held()).toBe(0);
    x.app.finalize();
    z.app.finalize();
  });
});
