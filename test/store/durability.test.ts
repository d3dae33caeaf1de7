// Kill -9 at random moments while a child process creates keys: every key the HSM acknowledged
// is there after reopening, whole and usable, and no half-written object exists.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CKA, CKM, CKO, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, RW, mech, openHsm, readyHsm, removeHome, tempHome } from '../hsm/support.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const creator = join(root, 'dist', 'test', 'store', 'fixtures', 'creator.js');
const RUNS = Number(process.env.NTLS_DURABILITY_RUNS ?? 20);

interface Ack { kind: 'aes' | 'ec'; label: string; handles: number[] }

let home: string;

beforeAll(async () => {
  if (!existsSync(creator)) throw new Error(`${creator} is missing: build first (npm run build; npm test does it)`);
  home = tempHome();
  const { hsm } = await readyHsm(home);
  hsm.close();
});
afterAll(() => removeHome(home));

/** Runs the creator until a random moment after it is ready, kills it with SIGKILL, returns its acknowledgements. */
function runAndKill(run: string): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [creator, home, run], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (timer === undefined && out.includes('ready\n')) {
        timer = setTimeout(() => child.kill('SIGKILL'), 20 + Math.floor(Math.random() * 250));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`creator ended by itself (code ${code}): ${err}`));
      // Only whole lines were acknowledged; a line cut by the kill is not.
      const lines = out.split('\n').slice(0, -1).filter((l) => l.startsWith('ack '));
      resolve(lines.map((l) => {
        const [, kind, label, ...handles] = l.split(' ');
        return { kind: kind as Ack['kind'], label: label!, handles: handles.map(Number) };
      }));
    });
  });
}

describe('durability under kill -9', () => {
  it(`keeps every acknowledged key across ${RUNS} random kills`, async () => {
    const acked: Ack[] = [];
    for (let run = 0; run < RUNS; run++) {
      const acks = await runAndKill(`r${run}`);
      acked.push(...acks);

      // Reopen: Hsm.open decodes every stored object, so a torn row would fail here.
      const hsm = await openHsm(home);
      try {
        const app = hsm.application('checker');
        const s = await app.C_OpenSession(hsm.getSlotList()[0]!, RW);
        await app.C_Login(s, CKU.USER, CO_PIN);
        await app.C_FindObjectsInit(s, []);
        const all = await app.C_FindObjects(s, 1_000_000);
        await app.C_FindObjectsFinal(s);
        const keys = new Map<string, number[]>();
        for (const h of all) {
          const { attributes } = await app.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }, { type: CKA.CLASS }]);
          const label = (attributes[0]!.value as Buffer).toString();
          keys.set(label, [...(keys.get(label) ?? []), attributes[1]!.value as number]);
        }
        // No half key pair: a label has one secret key, or exactly a public and a private key.
        for (const [label, classes] of keys) {
          const sorted = [...classes].sort();
          const whole = (sorted.length === 1 && sorted[0] === CKO.SECRET_KEY)
            || (sorted.length === 2 && sorted[0] === CKO.PUBLIC_KEY && sorted[1] === CKO.PRIVATE_KEY);
          expect(whole, `objects of ${label}: ${sorted.join(', ')}`).toBe(true);
        }
        // Everything acknowledged is there; at most one unacknowledged key per run (the one in flight).
        for (const ack of acked) expect(keys.has(ack.label), `acknowledged ${ack.label}`).toBe(true);
        expect(keys.size - acked.length).toBeLessThanOrEqual(run + 1);
        // This run's keys are usable: their sealed values open under the partition key.
        for (const ack of acks) {
          if (ack.kind === 'aes') {
            const gcm = mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12), aad: Buffer.alloc(0), tagBits: 128 });
            await app.C_EncryptInit(s, gcm, ack.handles[0]!);
            const ct = await app.C_Encrypt(s, Buffer.from(ack.label));
            await app.C_DecryptInit(s, gcm, ack.handles[0]!);
            expect((await app.C_Decrypt(s, ct)).toString()).toBe(ack.label);
          } else {
            await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), ack.handles[1]!);
            const sig = await app.C_Sign(s, Buffer.from(ack.label));
            await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), ack.handles[0]!);
            await app.C_Verify(s, Buffer.from(ack.label), sig);
          }
        }
      } finally {
        hsm.close();
      }
    }
    expect(acked.length).toBeGreaterThan(RUNS);
  }, 120_000);
});
