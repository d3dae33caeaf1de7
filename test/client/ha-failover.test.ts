// An HA group of two real daemons: a sign loop (the TypeScript library, and pkcs11-tool through
// the relay and p11-kit-client.so) while one node is killed -9 and started again. No single-part
// call fails; the lost node is taken out and comes back by itself, and takes calls again
// (per-member counts of `ntls-client ha show --json`); the client log says what happened.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createHash, verify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientLogFile } from '../../src/client/client-log.js';
import type { GroupStatus } from '../../src/client/ha-group.js';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { FrameReader, serializeFrame, type Frame } from '../../src/protocol/frame.js';
import { outputRequest, request } from '../../src/protocol/p11kit/index.js';
import { call, initialize, type RequestChannel } from '../support/p11kit.js';
import { sleep } from '../support/daemon.js';
import { Relay, pkcs11Tool, tempDir, removeDir } from '../support/e2e.js';
import { ECDSA_SHA256, GROUP, KEY_LABEL, setUpGroup, type HaSetup } from './ha-support.js';
import { CO_PIN, clientBin, expectOk } from './support.js';

let s: HaSetup;

beforeAll(async () => {
  s = await setUpGroup({ recoveryInterval: 1 });
}, 120_000);
afterAll(async () => {
  await s?.cleanup();
});

interface ShownMember { name: string; state: string; calls: number; load: number; lastError: { code: string; line: string } | null }
interface ShownGroup { group: string; source: string; members: ShownMember[] }

async function haShow(): Promise<ShownGroup> {
  const result = expectOk(await s.alice.run('ha', 'show', '--group', GROUP, '--json'));
  return (JSON.parse(result.stdout) as ShownGroup[])[0]!;
}

function calls(status: GroupStatus | ShownGroup, member: string): number {
  return (status.members as ShownMember[]).find((m) => m.name === member)!.calls;
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function clientLog(): string {
  const file = clientLogFile(s.alice.folder);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** p11-kit's side of the relay socket, as p11-kit-client.so speaks it: version byte, then frames in turn. */
async function relayChannel(path: string): Promise<RequestChannel & { close(): void }> {
  const socket: Socket = connect(path);
  const frames = new FrameReader(1 << 24);
  const waiting: Array<(frame: Frame) => void> = [];
  let versionSeen = false;
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const versioned = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      if (!versionSeen) {
        if (frames.takeByte() === null) return;
        versionSeen = true;
        resolve();
      }
      let frame: Frame | null;
      while ((frame = frames.next())) waiting.shift()?.(frame);
    });
  });
  socket.write(Buffer.from([0]));
  await versioned;
  let callCode = 1;
  return {
    request(body: Buffer): Promise<Frame> {
      return new Promise((resolve) => {
        waiting.push(resolve);
        socket.write(serializeFrame({ callCode: callCode++, options: Buffer.alloc(0), body }));
      });
    },
    close: () => socket.destroy(),
  };
}

describe('HA group of two nodes', () => {
  it('the library: a sign loop loses no call while node2 is killed -9 and restarted, and node2 takes calls again', async () => {
    const client = s.alice.library();
    try {
      const token = await client.openToken({ group: GROUP, pin: CO_PIN });
      const handle = await token.findKey(KEY_LABEL, [CKO.PRIVATE_KEY]);
      const publicKey = await token.publicKey(KEY_LABEL);
      let signed = 0;
      const failures: unknown[] = [];
      let stop = false;
      const loop = (async () => {
        for (let i = 0; i < 100_000 && !stop; i++) {
          try {
            const signature = await token.remote.sign(token.session, ECDSA_SHA256, handle, Buffer.from('ha'));
            if (!verify('sha256', Buffer.from('ha'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('bad signature');
            signed++;
          } catch (error) {
            failures.push(error);
          }
        }
      })();
      await until('40 signatures', () => signed >= 40);
      const before = client.groupStatus(GROUP);
      expect(calls(before, 'node1')).toBeGreaterThan(0);
      expect(calls(before, 'node2')).toBeGreaterThan(0);
      await s.nodes[1].kill();
      const atKill = signed;
      await until('40 signatures with node2 dead', () => signed >= atKill + 40);
      expect((client.groupStatus(GROUP)).members.find((m) => m.name === 'node2')!.state).not.toBe('up');
      await s.nodes[1].restart();
      const atRestart = calls(client.groupStatus(GROUP), 'node2');
      // Back within the recovery interval (1 s) plus a probe: bounded generously for a busy machine.
      await until('node2 takes calls again', () => calls(client.groupStatus(GROUP), 'node2') >= atRestart + 20, 30_000);
      stop = true;
      await loop;
      expect(failures).toEqual([]);
      await sleep(500);
      const shown = await haShow();
      expect(shown.source).toBe('processes');
      const node2 = shown.members.find((m) => m.name === 'node2')!;
      expect(node2.state).toBe('up');
      expect(node2.calls).toBeGreaterThanOrEqual(atRestart + 20);
      expect(node2.lastError).not.toBeNull();
      const log = clientLog();
      expect(log).toContain(`HA group ${GROUP}: member node2 lost:`);
      expect(log).toMatch(new RegExp(`HA group ${GROUP}: C_\\w+ failed over from node2 to node1:`));
      expect(log).toContain(`HA group ${GROUP}: member node2 recovered after`);
      await token.close();
    } finally {
      await client.close();
    }
  }, 180_000);

  it('a program on the HA relay socket: a long sign loop loses no call while node1 is killed -9 and restarted', async () => {
    const work = tempDir('ntls-ha-loop-');
    const socket = join(work, 'relay.sock');
    const child = spawn(process.execPath, [clientBin, 'p11-relay', '--group', GROUP, '--listen', socket, '--config-dir', s.alice.folder], { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = new Relay(socket, child);
    try {
      await relay.listening(30_000);
      const channel = await relayChannel(socket);
      await initialize(channel);
      const opened = await call(channel, request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
      expect(opened.rv).toBe(CKR.OK);
      const session = opened.args.session as number;
      expect((await call(channel, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from(CO_PIN) }))).rv).toBe(CKR.OK);
      expect((await call(channel, request('C_FindObjectsInit', { session, template: [{ type: CKA.LABEL, value: { kind: 'bytes', value: Buffer.from(KEY_LABEL) } }, { type: CKA.CLASS, value: { kind: 'ulong', value: CKO.PRIVATE_KEY } }] }))).rv).toBe(CKR.OK);
      const found = await call(channel, request('C_FindObjects', { session, objects: outputRequest(4) }));
      await call(channel, request('C_FindObjectsFinal', { session }));
      const key = (found.args.objects as number[])[0]!;
      const digest = createHash('sha256').update('loop').digest();
      const failures: number[] = [];
      let signed = 0;
      let stop = false;
      const loop = (async () => {
        for (let i = 0; i < 100_000 && !stop; i++) {
          const init = await call(channel, request('C_SignInit', { session, mechanism: { type: CKM.ECDSA, parameter: null }, key }));
          const sig = init.rv === CKR.OK ? await call(channel, request('C_Sign', { session, data: digest, signature: outputRequest(256) })) : init;
          if (sig.rv !== CKR.OK) failures.push(sig.rv);
          else signed++;
        }
      })();
      await until('30 signatures', () => signed >= 30);
      await s.nodes[0].kill();
      const atKill = signed;
      await until('30 signatures with node1 dead', () => signed >= atKill + 30);
      await s.nodes[0].restart();
      const atRestart = calls(await haShow(), 'node1');
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && calls(await haShow(), 'node1') <= atRestart + 10) await sleep(300);
      stop = true;
      await loop;
      channel.close();
      expect(failures).toEqual([]);
      expect(calls(await haShow(), 'node1')).toBeGreaterThan(atRestart + 10);
    } finally {
      await relay.stop();
      removeDir(work);
    }
  }, 180_000);

  it('pkcs11-tool through the HA relay: every signature made while node1 is killed -9 and restarted', async () => {
    const work = tempDir('ntls-ha-tool-');
    // A folder to be made, as for the single-server relay (the HA relay failed with EACCES).
    const socket = join(work, 'run', 'relay.sock');
    const child = spawn(process.execPath, [clientBin, 'p11-relay', '--group', GROUP, '--listen', socket, '--config-dir', s.alice.folder], { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = new Relay(socket, child);
    try {
      await relay.listening(30_000);
      const digest = join(work, 'digest.bin');
      writeFileSync(digest, createHash('sha256').update('tool').digest());
      const listing = await pkcs11Tool(socket, ['-L']);
      expect(listing.status, listing.stderr).toBe(0);
      expect(listing.stdout).toContain('HA group g1');
      const sign = (i: number) => pkcs11Tool(socket, ['--slot', '0', '--login', '--pin', CO_PIN, '--sign', '-m', 'ECDSA', '--label', KEY_LABEL, '-i', digest, '-o', join(work, `sig${i}.bin`)]);
      const failed: string[] = [];
      let i = 0;
      const round = async (n: number) => {
        for (const end = i + n; i < end; i++) {
          const r = await sign(i);
          if (r.status !== 0) failed.push(`#${i}: ${r.stderr}`);
        }
      };
      await round(4);
      // Killed while signing goes on: one pkcs11-tool started before, its calls move to node2.
      const during = sign(1000);
      await s.nodes[0].kill();
      const r = await during;
      if (r.status !== 0) failed.push(`during the kill: ${r.stderr}`);
      await round(4);
      await s.nodes[0].restart();
      const shownBefore = await haShow();
      const atRestart = calls(shownBefore, 'node1');
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        await round(2);
        await sleep(300);
        if (calls(await haShow(), 'node1') > atRestart) break;
      }
      expect(failed).toEqual([]);
      const shown = await haShow();
      expect(shown.members.find((m) => m.name === 'node1')!.state).toBe('up');
      expect(calls(shown, 'node1')).toBeGreaterThan(atRestart);
    } finally {
      await relay.stop();
      removeDir(work);
    }
  }, 180_000);
});
