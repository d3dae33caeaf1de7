// Application IDs: a persistent mapping keeps sessions and login across a reconnect; a transient
// one ends with its last connection; CloseAccess ends a persistent one. application-ids.test.ts
// runs applicationIdSuite on the software HSM through the in-process harness (unit);
// application-ids.daemon.test.ts runs it on SoftHSM2 in the real daemon, and
// persistentApplicationIdSuite (whose check reads the daemon's `ntls info show`) on both
// backends there (integration).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKR, CKS, CKU } from '../../src/pkcs11/constants.js';
import { CALL_ID, encodeRequest, outputRequest, request, P11KIT_HANDSHAKE } from '../../src/protocol/p11kit/index.js';
import { call } from '../support/p11kit.js';
import { runNtls } from '../support/daemon.js';
import { TestBackend, type BackendKind } from '../support/backends.js';
import { DaemonTarget, startTarget, type ProcessorTarget, type TargetKind, type TargetLink, type TargetOptions } from '../support/processor-target.js';

const NtlsAppCall = {
  SetApplicationId: 'NTLS_SetApplicationId', OpenAccess: 'NTLS_OpenAccess', CloseAccess: 'NTLS_CloseAccess',
} as const;

async function ntls(l: TargetLink, call: (typeof NtlsAppCall)[keyof typeof NtlsAppCall], major: number, minor: number): Promise<void> {
  const body = encodeRequest(request(call, { major, minor }));
  if (!body.ok) throw body.error;
  const answer = await l.request(body.value);
  expect(answer.body.readUInt32BE(0)).toBe(CALL_ID[call]);
}

/** The suites' set-up: client "appclient" on the default partition, its token initialised with a user PIN. */
function withApplicationClient<T extends ProcessorTarget>(kind: BackendKind, start: (options: TargetOptions) => Promise<T>) {
  const state = { backend: undefined as TestBackend | undefined, target: undefined as T | undefined };

  async function connect(): Promise<TargetLink> {
    const l = await state.target!.connect('appclient');
    const init = await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
    expect(init.rv).toBe(CKR.OK);
    return l;
  }

  beforeAll(async () => {
    // The default partition: the software HSM's own, a SoftHSM2 token (re-initialised below with its SO PIN) on pkcs11.
    const backend = new TestBackend(kind, [{ label: 'default', soPin: 'so-secret' }]);
    state.backend = backend;
    state.target = await start({ config: { hsm: backend.hsmConfig({ kdfCost: 1024, pinMinLength: 4 }), datapath: { receiveTimeout: 0 }, log: { debug: true } }, env: backend.env });
    await state.target.register('appclient');
    await state.target.assign('appclient', 'default');
    const l = await connect();
    expect((await call(l, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-secret'), label: 'apps' }))).rv).toBe(CKR.OK);
    const s = await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
    expect((await call(l, request('C_Login', { session: s.args.session as number, userType: CKU.SO, pin: Buffer.from('so-secret') }))).rv).toBe(CKR.OK);
    expect((await call(l, request('C_InitPIN', { session: s.args.session as number, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    await l.close();
  });

  afterAll(async () => {
    await state.target?.stop();
    state.backend?.remove();
  });

  return { connect, target: () => state.target! };
}

export const persistentApplicationIdSuite = (kind: BackendKind) => describe.each([kind])('application IDs (%s backend)', (kind) => {
  const { connect, target } = withApplicationClient(kind, (options) => DaemonTarget.start(options));

  it('a persistent mapping (OpenAccess) keeps the session and its login across a reconnect', async () => {
    const first = await connect();
    await ntls(first, NtlsAppCall.OpenAccess, 0xb43, 1);
    const opened = await call(first, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
    const session = opened.args.session as number;
    expect((await call(first, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    await first.close();

    const second = await connect();
    await ntls(second, NtlsAppCall.SetApplicationId, 0xb43, 1);
    const info = await call(second, request('C_GetSessionInfo', { session }));
    expect(info.rv).toBe(CKR.OK);
    expect(info.args.state).toBe(CKS.RW_USER_FUNCTIONS);
    const list = JSON.parse((await runNtls(['info', 'show', '--json', '--home', target().home])).stdout);
    expect(list.connectionsNow).toBeGreaterThan(0);

    // CloseAccess ends it: the session is gone.
    await ntls(second, NtlsAppCall.CloseAccess, 0xb43, 1);
    expect((await call(second, request('C_GetSessionInfo', { session }))).rv).toBe(CKR.SESSION_HANDLE_INVALID);
    await second.close();
    // The guide's shape: `Change existing APP ID mapping for [5 : 1] to persistent state : [80000005 : 1]`.
    // The guide's shape: `Change existing APP ID mapping for [5 : 1] to persistent state : [80000005 : 1]`.
    const changed = target().bodies().map((b) => /APP ID mapping for \[(\d+) : 1\] to persistent state : \[(.+) : 1\]/.exec(b)).filter((m) => m !== null);
    expect(changed.length).toBeGreaterThan(0);
    for (const m of changed) expect(m[2]).toBe((0x80000000 + Number(m[1])).toString(16));
    expect(target().bodies().some((b) => b.includes('Closing Access for [b43 : 1 :'))).toBe(true);
  });
});

export const applicationIdSuite = (kind: BackendKind, via: TargetKind) => describe.each([kind])('application IDs (%s backend)', (kind) => {
  const { connect, target } = withApplicationClient(kind, (options) => startTarget(via, options));

  it('a transient mapping ends with its last connection', async () => {
    const first = await connect();
    await ntls(first, NtlsAppCall.SetApplicationId, 7, 7);
    const session = (await call(first, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }))).args.session as number;
    const sharing = await connect();
    await ntls(sharing, NtlsAppCall.SetApplicationId, 7, 7);
    // Two connections of one application id share its sessions.
    expect((await call(sharing, request('C_GetSessionInfo', { session }))).rv).toBe(CKR.OK);
    await first.close();
    expect((await call(sharing, request('C_GetSessionInfo', { session }))).rv).toBe(CKR.OK);
    await sharing.close();
    await target().waitForLog('Transient APP ID Mapping');
    const again = await connect();
    await ntls(again, NtlsAppCall.SetApplicationId, 7, 7);
    expect((await call(again, request('C_GetSessionInfo', { session }))).rv).toBe(CKR.SESSION_HANDLE_INVALID);
    await again.close();
  });

  it('OpenAccess of the id a connection already uses keeps its sessions and login (set id, open, log in, then make it persistent)', async () => {
    const first = await connect();
    await ntls(first, NtlsAppCall.SetApplicationId, 9, 1);
    const session = (await call(first, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }))).args.session as number;
    expect((await call(first, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    // Naming the same id again changes nothing either.
    await ntls(first, NtlsAppCall.SetApplicationId, 9, 1);
    await ntls(first, NtlsAppCall.OpenAccess, 9, 1);
    const info = await call(first, request('C_GetSessionInfo', { session }));
    expect(info.rv).toBe(CKR.OK);
    expect(info.args.state).toBe(CKS.RO_USER_FUNCTIONS);
    await first.close();
    // Persistent now: the next connection naming the id finds the session logged in.
    const second = await connect();
    await ntls(second, NtlsAppCall.SetApplicationId, 9, 1);
    expect((await call(second, request('C_GetSessionInfo', { session }))).args.state).toBe(CKS.RO_USER_FUNCTIONS);
    await ntls(second, NtlsAppCall.CloseAccess, 9, 1);
    await second.close();
  });

  it('connections without an application id share nothing: sessions belong to their connection', async () => {
    const l = await connect();
    const session = (await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }))).args.session as number;
    const other = await connect();
    expect((await call(other, request('C_GetSessionInfo', { session }))).rv).toBe(CKR.SESSION_HANDLE_INVALID);
    expect((await call(other, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(8) }))).args.slotList).toEqual([0]);
    await l.close();
    await other.close();
  });

  it('a malformed application-id call is answered CKR_ARGUMENTS_BAD', async () => {
    const l = await connect();
    const body = Buffer.alloc(8);
    body.writeUInt32BE(CALL_ID.NTLS_OpenAccess, 0);
    const answer = await l.request(body);
    expect(answer.body.readUInt32BE(0)).toBe(0);
    expect(Number(answer.body.readBigUInt64BE(9))).toBe(CKR.ARGUMENTS_BAD);
    await l.close();
  });

  it('an application id part over 32 bits, all ones included, is CKR_ARGUMENTS_BAD', async () => {
    const l = await connect();
    for (const major of [0xffffffffffffffffn, 0x100000000n]) {
      const body = encodeRequest(request(NtlsAppCall.SetApplicationId, { major: 1, minor: 1 }));
      if (!body.ok) throw body.error;
      // The major is the first of the two CK_ULONGs that end the request.
      const raw = Buffer.from(body.value);
      raw.writeBigUInt64BE(major, raw.length - 16);
      const answer = await l.request(raw);
      expect(answer.body.readUInt32BE(0)).toBe(0);
      expect(Number(answer.body.readBigUInt64BE(9))).toBe(CKR.ARGUMENTS_BAD);
    }
    await l.close();
  });
});
