// An HA group of two real daemons: a sign loop (the TypeScript library, and pkcs11-tool through
// the relay and p11-kit-client.so) while one node is killed -9 and started again. No single-part
// call fails; the lost node is taken out and comes back by itself, and takes calls again
// (per-member counts of `ntls-client ha show --json`); the client log says what happened.
import { spawn } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientLogFile } from '../../src/client/client-log.js';
import type { GroupStatus } from '../../src/client/ha-group.js';
import { CKO } from '../../src/pkcs11/constants.js';
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

  it('pkcs11-tool through the HA relay: every signature made while node1 is killed -9 and restarted', async () => {
    const work = tempDir('ntls-ha-tool-');
    const socket = join(work, 'relay.sock');
    const child = spawn(process.execPath, [clientBin, 'p11-relay', '--group', GROUP, '--listen', socket, '--config-dir', s.alice.folder], { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = new Relay(socket, child);
    try {
      await until('the relay listens', () => existsSync(socket) || !relay.running, 30_000);
      expect(relay.running, relay.stderr).toBe(true);
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
