// Per-client views through the TLS relay, with the stock pkcs11-tool: two registered clients,
// two partitions, each client assigned one. Each sees only its own partition (as its slot 0),
// cannot reach the other's objects or log in to it, a login never leaks to another client of
// the same partition, a revoked partition disappears, and an unregistered client is refused.
// Once per HSM backend: the built-in software HSM, and SoftHSM2 behind the PKCS#11 passthrough
// (where the isolation between clients of one token is ntls's own doing).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, removeHome } from '../support/daemon.js';
import { BACKENDS, TestBackend, type BackendKind } from '../support/backends.js';
import {
  admin, backendPartition, createClientCert, explain, holdPkcs11Tool, listedSlots, partitions, pkcs11Tool, registerClient,
  removeDir, startBackendDaemon, startRelay, tempDir, waitFor, type ClientFiles, type Relay, type ToolResult,
} from '../support/e2e.js';

const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};
/**
 * The slots of a listing with their partition's serial: the software HSM's slot description is
 * "NTLS partition SERIAL"; behind the passthrough it is the module's own, the serial is the token's.
 */
const slotsOf = (kind: BackendKind, listing: string) => (kind === 'software'
  ? [...listing.matchAll(/^Slot (\d+) \(0x[0-9a-f]+\): NTLS partition (\d+)\s*$/gm)].map((m) => ({ slot: m[1], serial: m[2] }))
  : listedSlots(listing).map((s) => ({ slot: s.slot, serial: s.serial })));

describe.each(BACKENDS)('per-client views through the relay (%s backend)', (kind) => {
  let backend: TestBackend;
  let daemon: Daemon;
  let work: string;
  let alice: ClientFiles;
  let bob: ClientFiles;
  let carol: ClientFiles;
  let mallory: ClientFiles;
  let aliceRelay: Relay;
  let bobRelay: Relay;
  let carolRelay: Relay;
  let mallorysRelay: Relay;
  let serialA = '';
  let serialB = '';
  let serialLock = '';

  beforeAll(async () => {
    work = tempDir('ntls-e2e-iso-');
    // On pkcs11 the partitions are SoftHSM2 tokens made beforehand, re-initialised below with these SO PINs.
    backend = new TestBackend(kind, [
      { label: 'part-a', soPin: '11111111' }, { label: 'part-b', soPin: '22222222' }, { label: 'part-lock', soPin: '33333333' },
    ]);
    daemon = await startBackendDaemon(backend, { kdfCost: 1024, pinMinLength: 4, maxFailedLogins: 3 });
    serialA = (await backendPartition(daemon, backend, 'part-a')).serial;
    serialB = (await backendPartition(daemon, backend, 'part-b')).serial;
    serialLock = (await backendPartition(daemon, backend, 'part-lock')).serial;
    alice = await createClientCert('alice', work);
    bob = await createClientCert('bob', work);
    carol = await createClientCert('carol', work);
    mallory = await createClientCert('mallory', work);
    await registerClient(daemon, alice, 'part-a');
    await registerClient(daemon, bob, 'part-b');
    // A second client of partition A (assigned by serial), with a partition of its own as its slot 1.
    await registerClient(daemon, carol, serialA, 'part-lock');
    aliceRelay = await startRelay(daemon, alice, join(work, 'alice.sock'));
    bobRelay = await startRelay(daemon, bob, join(work, 'bob.sock'));
    carolRelay = await startRelay(daemon, carol, join(work, 'carol.sock'));
    mallorysRelay = await startRelay(daemon, mallory, join(work, 'mallory.sock'));
  });

  afterAll(async () => {
    for (const r of [aliceRelay, bobRelay, carolRelay, mallorysRelay]) await r?.stop();
    await daemon?.stop();
    if (daemon) removeHome(daemon.home);
    if (work) removeDir(work);
    backend?.remove();
  });

  const asAlice = (args: string[], input?: string) => pkcs11Tool(aliceRelay.socketPath, args, { input, cwd: work });
  const asBob = (args: string[], input?: string) => pkcs11Tool(bobRelay.socketPath, args, { input, cwd: work });
  const asCarol = (args: string[], input?: string) => pkcs11Tool(carolRelay.socketPath, args, { input, cwd: work });

  describe('each client sees only its own partition', () => {
    it('-L lists exactly one slot, slot 0, and it is a different partition for each client', async () => {
      const a = slotsOf(kind, ok(await asAlice(['-L'])).stdout);
      const b = slotsOf(kind, ok(await asBob(['-L'])).stdout);
      expect(a).toEqual([{ slot: '0', serial: serialA }]);
      expect(b).toEqual([{ slot: '0', serial: serialB }]);
      expect(serialA).not.toBe(serialB);
      // The local socket (the appliance host) sees every partition.
      const local = slotsOf(kind, ok(await pkcs11Tool(join(daemon.home, 'p11kit.sock'), ['-L'])).stdout).map((s) => s.serial);
      expect(local).toEqual(expect.arrayContaining([serialA, serialB]));
    });

    it('a client with two partitions sees them as slots 0 and 1, in assignment order', async () => {
      expect(slotsOf(kind, ok(await asCarol(['-L'])).stdout)).toEqual([{ slot: '0', serial: serialA }, { slot: '1', serial: serialLock }]);
    });

    it('each client initialises its own token; the other\'s label never shows', async () => {
      ok(await asAlice(['--init-token', '--slot', '0', '--label', 'alice-token', '--so-pin', '11111111']));
      ok(await asAlice(['--init-pin', '--slot', '0', '--login', '--login-type', 'so', '--so-pin', '11111111', '--pin', '1111']));
      ok(await asBob(['--init-token', '--slot', '0', '--label', 'bob-token', '--so-pin', '22222222']));
      ok(await asBob(['--init-pin', '--slot', '0', '--login', '--login-type', 'so', '--so-pin', '22222222', '--pin', '2222']));
      const a = ok(await asAlice(['-L'])).stdout;
      const b = ok(await asBob(['-L'])).stdout;
      expect(a).toContain('token label        : alice-token');
      expect(a).not.toContain('bob-token');
      expect(b).toContain('token label        : bob-token');
      expect(b).not.toContain('alice-token');
      const rows = await partitions(daemon);
      // Software partitions go by their token's label; passthrough ones keep their configured names.
      expect(rows.find((p) => p.serial === serialA)!.label).toBe(kind === 'software' ? 'alice-token' : 'part-a');
      expect(rows.find((p) => p.serial === serialB)!.label).toBe(kind === 'software' ? 'bob-token' : 'part-b');
    });

    it('alice\'s objects are invisible to bob, logged in or not', async () => {
      ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'alice-secret', '--id', 'a1']));
      ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--keygen', '--key-type', 'AES:32', '--private', '--sensitive', '--label', 'alice-aes', '--id', 'a2']));
      const mine = ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--list-objects'])).stdout;
      expect(mine).toContain('alice-secret');
      expect(mine).toContain('alice-aes');
      const bobsView = ok(await asBob(['--slot', '0', '--login', '--pin', '2222', '--list-objects']));
      expect(bobsView.stdout).not.toContain('alice');
      expect(ok(await asBob(['--slot', '0', '--list-objects'])).stdout).not.toContain('alice');
      // Bob, naming alice's key by id, finds nothing.
      const sign = await asBob(['--slot', '0', '--login', '--pin', '2222', '--sign', '-m', 'ECDSA', '--id', 'a1'], 'x'.repeat(32));
      expect(sign.status).not.toBe(0);
      expect(sign.stderr).toMatch(/not found/i);
    });

    it('bob cannot reach alice\'s partition: not by token label, not by another slot id, not with her PIN', async () => {
      const byLabel = await asBob(['--token-label', 'alice-token', '--login', '--pin', '1111', '--list-objects']);
      expect(byLabel.status).not.toBe(0);
      expect(byLabel.stdout).not.toContain('alice-secret');
      const hsmSlots = (await partitions(daemon)).map((p) => p.slotId);
      for (const slot of [...new Set([1, 2, ...hsmSlots])].filter((s) => s !== 0)) {
        const r = await asBob(['--slot', String(slot), '--login', '--pin', '1111', '--list-objects']);
        expect(r.status, explain(r)).not.toBe(0);
        expect(r.stdout).not.toContain('alice-secret');
      }
      const herPin = await asBob(['--slot', '0', '--login', '--pin', '1111', '--list-objects']);
      expect(herPin.status).not.toBe(0);
      expect(herPin.stderr).toContain('CKR_PIN_INCORRECT');
      // And bob still logs in to his own token.
      ok(await asBob(['--slot', '0', '--login', '--pin', '2222', '--list-objects']));
    });

    it('a login does not leak to another client of the same partition', async () => {
      // carol shares partition A with alice; alice holds a logged-in session open.
      const held = holdPkcs11Tool(aliceRelay.socketPath, ['--slot', '0', '--login', '--pin', '1111', '--sign', '-m', 'ECDSA', '--id', 'a1', '-o', join(work, 'held.sig')]);
      try {
        await waitFor('alice\'s logged-in session on partition A', async () => {
          const row = (await partitions(daemon)).find((p) => p.serial === serialA)!;
          return row.sessions >= 1 && row.connectedClients.includes('alice');
        });
        const carolsView = ok(await asCarol(['--slot', '0', '--list-objects']));
        expect(carolsView.stdout).toContain('label:      alice-secret'); // the public key is public
        expect(carolsView.stdout).not.toMatch(/^Private Key Object/m);
        expect(carolsView.stdout).not.toMatch(/^Secret Key Object/m);
        const carolPriv = ok(await asCarol(['--slot', '0', '--list-objects', '--type', 'privkey']));
        expect(carolPriv.stdout).not.toContain('alice-secret');
      } finally {
        const done = await held.finish(Buffer.alloc(32, 7));
        expect(done.status, explain(done)).toBe(0);
      }
    });
  });

  describe('re-initialisation', () => {
    it('C_InitToken with a wrong SO PIN is CKR_PIN_INCORRECT; while another client has a session, CKR_SESSION_EXISTS', async () => {
      const wrong = await asCarol(['--init-token', '--slot', '0', '--label', 'hijacked', '--so-pin', '99999999']);
      expect(wrong.status).not.toBe(0);
      expect(wrong.stderr).toContain('CKR_PIN_INCORRECT');
      const held = holdPkcs11Tool(aliceRelay.socketPath, ['--slot', '0', '--login', '--pin', '1111', '--sign', '-m', 'ECDSA', '--id', 'a1', '-o', join(work, 'held2.sig')]);
      try {
        await waitFor('alice\'s session on partition A', async () => (await partitions(daemon)).find((p) => p.serial === serialA)!.connectedClients.includes('alice'));
        const busy = await asCarol(['--init-token', '--slot', '0', '--label', 'hijacked', '--so-pin', '11111111']);
        expect(busy.status).not.toBe(0);
        expect(busy.stderr).toContain('CKR_SESSION_EXISTS');
      } finally {
        const done = await held.finish(Buffer.alloc(32, 3));
        expect(done.status, explain(done)).toBe(0);
      }
      const still = ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--list-objects']));
      expect(still.stdout).toContain('alice-secret');
      expect(ok(await asAlice(['-L'])).stdout).toContain('token label        : alice-token');
    });
  });

  describe('revocation and refusal', () => {
    it('revoking a partition takes it from the client\'s next listing; the other client keeps its own', async () => {
      // By the partition's name ("part-b"), never by the label bob's SO gave its token (docs/operations.md, "Words").
      await admin(daemon, 'client', 'revoke-partition', '-c', 'bob', '-p', 'part-b');
      const afterRevoke = await asBob(['-L']);
      expect(slotsOf(kind, afterRevoke.stdout)).toEqual([]);
      expect(afterRevoke.stdout + afterRevoke.stderr).toMatch(/No slots/);
      expect(slotsOf(kind, ok(await asAlice(['-L'])).stdout)).toEqual([{ slot: '0', serial: serialA }]);
      // The objects are still there for a client given the partition again.
      await admin(daemon, 'client', 'assign-partition', '-c', 'bob', '-p', serialB);
      expect(slotsOf(kind, ok(await asBob(['-L'])).stdout)).toEqual([{ slot: '0', serial: serialB }]);
      ok(await asBob(['--slot', '0', '--login', '--pin', '2222', '--list-objects']));
    });

    it('revoking a partition ends the client\'s live session on it at once', async () => {
      ok(await asBob(['--slot', '0', '--login', '--pin', '2222', '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'bob-ec', '--id', 'b1']));
      const held = holdPkcs11Tool(bobRelay.socketPath, ['--slot', '0', '--login', '--pin', '2222', '--sign', '-m', 'ECDSA', '--id', 'b1', '-o', join(work, 'b1.sig')]);
      let finished: ToolResult | undefined;
      try {
        await waitFor('bob\'s logged-in session on partition B', async () => {
          const row = (await partitions(daemon)).find((p) => p.serial === serialB)!;
          return row.sessions >= 1 && row.connectedClients.includes('bob');
        });
        await admin(daemon, 'client', 'revoke-partition', '-c', 'bob', '-p', serialB);
        await waitFor('the revoked partition to have no session of bob', async () => {
          const row = (await partitions(daemon)).find((p) => p.serial === serialB)!;
          return row.sessions === 0 && !row.connectedClients.includes('bob');
        }, 5000);
      } finally {
        finished = await held.finish(Buffer.alloc(32, 1));
      }
      // The signature pkcs11-tool attempts after the revocation fails.
      expect(finished.status, explain(finished)).not.toBe(0);
      expect(finished.stderr).toMatch(/CKR_/);
      await admin(daemon, 'client', 'assign-partition', '-c', 'bob', '-p', serialB);
      ok(await asBob(['--slot', '0', '--login', '--pin', '2222', '--list-objects']));
    });

    it('repeated wrong PINs lock that partition\'s user (maxFailedLogins 3) and no other', async () => {
      const asCarolSlot1 = (args: string[]) => asCarol(['--slot', '1', ...args]);
      ok(await asCarolSlot1(['--init-token', '--label', 'carol-lock', '--so-pin', '33333333']));
      ok(await asCarolSlot1(['--init-pin', '--login', '--login-type', 'so', '--so-pin', '33333333', '--pin', '3333']));
      ok(await asCarolSlot1(['--login', '--pin', '3333', '--list-objects']));
      for (let i = 0; i < 3; i++) {
        const bad = await asCarolSlot1(['--login', '--pin', '0000', '--list-objects']);
        expect(bad.status).not.toBe(0);
        expect(bad.stderr).toMatch(kind === 'software' ? /CKR_PIN_INCORRECT|CKR_PIN_LOCKED/ : /CKR_PIN_INCORRECT/);
      }
      if (kind === 'software') {
        const locked = await asCarolSlot1(['--login', '--pin', '3333', '--list-objects']);
        expect(locked.status, explain(locked)).not.toBe(0);
        expect(locked.stderr).toContain('CKR_PIN_LOCKED');
      } else {
        // Behind the passthrough the lockout policy is the module's (hsm.maxFailedLogins is the
        // built-in HSM's), and SoftHSM2 2.6 locks no PIN: the right one still logs in.
        ok(await asCarolSlot1(['--login', '--pin', '3333', '--list-objects']));
      }
      // Partition A (carol's slot 0, alice's slot 0) is untouched.
      ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--list-objects']));
      ok(await asCarol(['--slot', '0', '--login', '--pin', '1111', '--list-objects']));
      // The SO sets a new user PIN (C_InitPIN); the user logs in with it.
      ok(await asCarolSlot1(['--init-pin', '--login', '--login-type', 'so', '--so-pin', '33333333', '--pin', '4444']));
      ok(await asCarolSlot1(['--login', '--pin', '4444', '--list-objects']));
    });

    it('deleting a client ends its live connection at once and refuses it from then on', async () => {
      const held = holdPkcs11Tool(carolRelay.socketPath, ['--slot', '0', '--login', '--pin', '1111', '--sign', '-m', 'ECDSA', '--id', 'a1', '-o', join(work, 'carol.sig')]);
      let finished: ToolResult | undefined;
      try {
        await waitFor('carol\'s session on partition A', async () => (await partitions(daemon)).find((p) => p.serial === serialA)!.connectedClients.includes('carol'));
        const from = daemon.log().length;
        await admin(daemon, 'client', 'delete', '-c', 'carol', '--force');
        await waitFor('carol gone from partition A', async () => !(await partitions(daemon)).find((p) => p.serial === serialA)!.connectedClients.includes('carol'), 5000);
        const refused = await asCarol(['-L']);
        expect(refused.status).not.toBe(0);
        await daemon.waitForLog('Client credentials cannot be verified. Connection terminated', 10_000, from);
      } finally {
        finished = await held.finish(Buffer.alloc(32, 2));
      }
      expect(finished.status, explain(finished)).not.toBe(0);
      // alice, on the same partition, carries on.
      ok(await asAlice(['--slot', '0', '--login', '--pin', '1111', '--list-objects']));
    });

    it('an unregistered client is refused: the tool fails, the relay says why, the daemon logs the reference line', async () => {
      const from = daemon.log().length;
      const r = await pkcs11Tool(mallorysRelay.socketPath, ['-L']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/CKR_DEVICE_ERROR|No slots/);
      expect(r.stdout).not.toMatch(/NTLS partition/);
      await daemon.waitForLog('Client credentials cannot be verified. Connection terminated', 10_000, from);
      await waitFor(`the relay to report the refusal (its stderr so far: ${JSON.stringify(mallorysRelay.stderr)})`, () => /refused this client's certificate|not registered|is this client registered\?/.test(mallorysRelay.stderr));
      expect(daemon.log().slice(from).some((l) => l.includes('"mallory" connected and authenticated'))).toBe(false);
    });
  });
});
