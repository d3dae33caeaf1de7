// A request refused for its size (over datapath.maxFrameBytes) is CKR_HOST_MEMORY, and, as any
// failed step is (PKCS#11), it ends the operation it belongs to: a C_DigestUpdate refused must not
// leave the digest going on without that part (it did: the next update answered CKR_OK and the
// final gave the digest of the other parts), nor a C_Encrypt leave encryption active. The same on
// the main process and on a datapath worker, which passes the request's head on.
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { CKF, CKR, CKM } from '../../src/pkcs11/constants.js';
import { outputRequest, request } from '../../src/protocol/p11kit/index.js';
import { call, initialize } from '../support/p11kit.js';
import { Daemon, link, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon } from '../support/daemon.js';

const MAX_FRAME = 64 * 1024;
const homes: string[] = [];
const daemons: Daemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.stop();
  for (const h of homes) removeHome(h);
});

describe.each([['the main process', '0'], ['a datapath worker', '2']])('a request over maxFrameBytes on %s', (_where, workers) => {
  it('is CKR_HOST_MEMORY and ends its operation; the session digests anew', async () => {
    const home = makeHome({ datapath: { maxFrameBytes: MAX_FRAME, receiveTimeout: 0 }, hsm: { kdfCost: 1024 } });
    homes.push(home);
    const daemon = await startDaemon(home, { NTLS_WORKERS: workers });
    daemons.push(daemon);
    const client = await makeClient('big');
    registerClient(home, client);
    expect((await runNtls(['client', 'assign-partition', '-c', 'big', '-p', 'default', '--home', home])).status).toBe(0);
    // With 2 workers, links alternate between the main process and the worker: use several.
    for (let n = 0; n < (workers === '0' ? 1 : 3); n++) {
      const l = await link(daemon, client);
      await initialize(l);
      if (n === 0) expect((await call(l, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'big' }))).rv).toBe(CKR.OK);
      const opened = await call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }));
      expect(opened.rv).toBe(CKR.OK);
      const session = opened.args.session as number;
      const sha256 = { type: CKM.SHA256, parameter: null };
      expect((await call(l, request('C_DigestInit', { session, mechanism: sha256 }))).rv).toBe(CKR.OK);
      expect((await call(l, request('C_DigestUpdate', { session, part: Buffer.from('a') }))).rv).toBe(CKR.OK);
      expect((await call(l, request('C_DigestUpdate', { session, part: Buffer.alloc(MAX_FRAME) }))).rv).toBe(CKR.HOST_MEMORY);
      expect((await call(l, request('C_DigestUpdate', { session, part: Buffer.from('b') }))).rv).toBe(CKR.OPERATION_NOT_INITIALIZED);
      expect((await call(l, request('C_DigestInit', { session, mechanism: sha256 }))).rv).toBe(CKR.OK);
      const digest = await call(l, request('C_Digest', { session, data: Buffer.from('abc'), digest: outputRequest(32) }));
      expect(digest.rv).toBe(CKR.OK);
      expect(digest.args.digest).toEqual(createHash('sha256').update('abc').digest());
      await l.close();
    }
  });
});
