// State a client can make the daemon keep, bounded (docs/operations.md, "Limits and what happens
// at them"): sessions open on one partition (hsm.maxSessions, CKR_SESSION_COUNT, reported as
// ulMaxSessionCount) and persistent application ids of one client (processor.maxAppIdsPerClient,
// CKR_DEVICE_MEMORY; they outlive the client's links). The link serves on after each refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKR } from '../../src/pkcs11/constants.js';
import { request } from '../../src/protocol/p11kit/index.js';
import { ProcessorHarness, type HarnessLink } from '../support/processor-harness.js';
import { call, initialize } from '../support/p11kit.js';

const MAX_SESSIONS = 5;
const MAX_APP_IDS = 3;

let harness: ProcessorHarness;
let link: HarnessLink;

beforeAll(async () => {
  harness = await ProcessorHarness.start({
    config: { hsm: { kdfCost: 1024, pinMinLength: 4, maxSessions: MAX_SESSIONS }, processor: { maxAppIdsPerClient: MAX_APP_IDS }, datapath: { receiveTimeout: 0 } },
  });
  harness.register('hoarder');
  await harness.assign('hoarder', 'default');
  link = await harness.connect('hoarder');
  await initialize(link);
  expect((await call(link, request('C_InitToken', { slotId: 0, pin: Buffer.from('so-pin-1'), label: 'limits' }))).rv).toBe(CKR.OK);
});

afterAll(async () => {
  await harness?.stop();
});

const openSession = (l: HarnessLink) => call(l, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION }));

describe('hsm.maxSessions', () => {
  it('C_GetTokenInfo reports the limit; past it C_OpenSession is CKR_SESSION_COUNT, for every application of the partition', async () => {
    const info = await call(link, request('C_GetTokenInfo', { slotId: 0 }));
    expect(info.args.maxSessionCount).toBe(MAX_SESSIONS);
    const sessions: number[] = [];
    for (let i = 0; i < MAX_SESSIONS; i++) {
      const opened = await openSession(link);
      expect(opened.rv).toBe(CKR.OK);
      sessions.push(opened.args.session as number);
    }
    expect((await openSession(link)).rv).toBe(CKR.SESSION_COUNT);
    // Another connection of the client is another application on the same partition.
    const other = await harness.connect('hoarder');
    await initialize(other);
    expect((await openSession(other)).rv).toBe(CKR.SESSION_COUNT);
    // One closed: one can open again.
    expect((await call(link, request('C_CloseSession', { session: sessions.pop()! }))).rv).toBe(CKR.OK);
    expect((await openSession(other)).rv).toBe(CKR.OK);
    expect((await call(link, request('C_CloseAllSessions', { slotId: 0 }))).rv).toBe(CKR.OK);
    await other.close();
  });
});

describe('processor.maxAppIdsPerClient', () => {
  const openAccess = (l: HarnessLink, minor: number) => call(l, request('NTLS_OpenAccess', { major: 0xa11, minor }));
  const closeAccess = (l: HarnessLink, minor: number) => call(l, request('NTLS_CloseAccess', { major: 0xa11, minor }));

  it('past the limit OpenAccess is CKR_DEVICE_MEMORY and the link serves on; an id already persistent, or one freed by CloseAccess, opens', async () => {
    for (let minor = 1; minor <= MAX_APP_IDS; minor++) expect((await openAccess(link, minor)).rv, String(minor)).toBe(CKR.OK);
    expect((await openAccess(link, MAX_APP_IDS + 1)).rv).toBe(CKR.DEVICE_MEMORY);
    // The refused call left the connection on its application: it still opens sessions there.
    expect((await openSession(link)).rv).toBe(CKR.OK);
    // Persistent ids outlive the link: a new link of the client meets the same limit.
    const again = await harness.connect('hoarder');
    await initialize(again);
    expect((await openAccess(again, 99)).rv).toBe(CKR.DEVICE_MEMORY);
    expect((await openAccess(again, 2)).rv).toBe(CKR.OK);
    expect((await closeAccess(again, 2)).rv).toBe(CKR.OK);
    expect((await openAccess(again, 99)).rv).toBe(CKR.OK);
    await again.close();
  });
});
