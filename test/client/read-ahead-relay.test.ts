// The relay's attribute read-ahead with stock tools: pkcs11-tool -O through p11-kit-client.so
// prints the same listing with read-ahead as with --no-read-ahead, over every kind of object,
// with a fraction of the attribute reads reaching the daemon; and a program's own change is seen
// by its next read.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeHome, runNtls } from '../support/daemon.js';
import { CO_PIN, initialiseSlot, setUp, startRelay, type Setup } from './support.js';

const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
/** The start of a pkcs11js program through p11-kit-client.so: \`p\`, \`session\` logged in as user. */
const LOGGED_IN = `
      import pkcs11js from 'pkcs11js';
      const p = new pkcs11js.PKCS11();
      p.load(${JSON.stringify(P11KIT_CLIENT)});
      p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      const slot = p.C_GetSlotList(true)[0];
      const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p.C_Login(session, pkcs11js.CKU_USER, ${JSON.stringify(CO_PIN)});`;

let s: Setup;
const relays: ChildProcess[] = [];

async function relayEnv(socket: string, ...flags: string[]): Promise<NodeJS.ProcessEnv> {
  relays.push((await startRelay(['--listen', socket, '--config-dir', s.alice.folder, ...flags])).child);
  return { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` };
}

function tool(env: NodeJS.ProcessEnv, ...args: string[]): string {
  const run = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '--login', '--pin', CO_PIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  expect(run.status, `pkcs11-tool ${args.join(' ')}: ${run.stderr}`).toBe(0);
  return run.stdout;
}

/** C_GetAttributeValue calls the daemon answered since the last `ntls info reset`. */
async function attributeReads(): Promise<number> {
  const info = await runNtls(['info', 'show', '--json', '--home', s.home]);
  expect(info.status, info.stderr).toBe(0);
  const calls = (JSON.parse(info.stdout) as { calls: Array<{ call: string; count: number }> }).calls;
  return calls.find((c) => c.call === 'C_GetAttributeValue')?.count ?? 0;
}

async function resetCounters(): Promise<void> {
  expect((await runNtls(['info', 'reset', '--home', s.home])).status).toBe(0);
}

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
}, 60_000);

afterAll(async () => {
  for (const relay of relays) relay.kill('SIGTERM');
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

describe('p11-relay attribute read-ahead, with stock pkcs11-tool', () => {
  it('lists every kind of object as without it, with a fraction of the reads reaching the daemon', async () => {
    const ahead = await relayEnv(join(s.alice.folder, 'ahead.sock'));
    const plain = await relayEnv(join(s.alice.folder, 'plain.sock'), '--no-read-ahead');
    tool(ahead, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'ec key', '--id', '01');
    tool(ahead, '--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa key', '--id', '02');
    tool(ahead, '--keygen', '--key-type', 'AES:32', '--label', 'aes key', '--id', '03');
    const data = join(s.alice.folder, 'data.bin');
    writeFileSync(data, 'some data');
    tool(ahead, '--write-object', data, '--type', 'data', '--label', 'data object');
    const keyFile = join(s.alice.folder, 'cert-key.pem');
    const certFile = join(s.alice.folder, 'cert.der');
    const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
      '-subj', '/CN=read-ahead', '-days', '1', '-outform', 'DER', '-out', certFile], { encoding: 'utf8' });
    expect(openssl.status, openssl.stderr).toBe(0);
    tool(ahead, '--write-object', certFile, '--type', 'cert', '--label', 'a certificate', '--id', '04');

    await resetCounters();
    const without = tool(plain, '-O');
    const readsWithout = await attributeReads();
    await resetCounters();
    const withReadAhead = tool(ahead, '-O');
    const readsWith = await attributeReads();

    for (const kind of ['Public Key Object', 'Private Key Object', 'Secret Key Object', 'Data object', 'Certificate Object']) {
      expect(without).toContain(kind);
    }
    expect(withReadAhead).toBe(without);
    expect(readsWith).toBeLessThan(readsWithout / 2);
  }, 120_000);

  it('answers every kind of attribute as the server does: flags, numbers, bytes, dates, mechanism lists, sensitive values', async () => {
    const ahead = await relayEnv(join(s.alice.folder, 'kinds-ahead.sock'));
    const plain = await relayEnv(join(s.alice.folder, 'kinds-plain.sock'), '--no-read-ahead');
    // Each read is a burst for pkcs11js (a size query, then the value); single attributes as
    // p11-kit's client reads them, then a whole template with a sensitive value in it.
    const script = (label: string) => `${LOGGED_IN}
      const aes = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_LABEL, value: ${JSON.stringify(label)} }, { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_SENSITIVE, value: true }, { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_START_DATE, value: Buffer.from('20260101') },
        { type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: Buffer.from(new BigUint64Array([BigInt(pkcs11js.CKM_AES_GCM), BigInt(pkcs11js.CKM_AES_CBC_PAD)]).buffer) },
      ]);
      const types = ['CKA_CLASS', 'CKA_KEY_TYPE', 'CKA_LABEL', 'CKA_VALUE_LEN', 'CKA_SENSITIVE', 'CKA_ENCRYPT', 'CKA_SIGN', 'CKA_START_DATE',
        'CKA_END_DATE', 'CKA_ALLOWED_MECHANISMS', 'CKA_DESTROYABLE', 'CKA_VALUE', 'CKA_MODULUS', 'CKA_CHECK_VALUE'];
      const show = (f) => { try { return f().map((a) => a.value === undefined ? null : Buffer.from(a.value).toString('hex')); } catch (e) { return String(e.message).match(/CKR_\\w+/)?.[0] ?? e.message; } };
      const seen = {};
      for (const t of types) seen[t] = show(() => p.C_GetAttributeValue(session, aes, [{ type: pkcs11js[t] }]));
      seen.template = show(() => p.C_GetAttributeValue(session, aes, types.slice(0, 8).map((t) => ({ type: pkcs11js[t] }))));
      seen.withSensitive = show(() => p.C_GetAttributeValue(session, aes, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_VALUE }]));
      p.C_Finalize();
      console.log(JSON.stringify(seen));
    `;
    const run = (env: NodeJS.ProcessEnv) => {
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script('kinds')], { env, encoding: 'utf8', timeout: 30_000, cwd: join(import.meta.dirname, '..', '..') });
      expect(result.status, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as Record<string, unknown>;
    };
    // A new key each run: its check value differs, its length does not.
    const { CKA_CHECK_VALUE: checkAhead, ...withReadAhead } = run(ahead);
    const { CKA_CHECK_VALUE: checkPlain, ...without } = run(plain);
    expect(withReadAhead).toEqual(without);
    expect([checkAhead, checkPlain].map((v) => (v as string[])[0]!.length)).toEqual([6, 6]);
    expect(without.CKA_VALUE).toBe('CKR_ATTRIBUTE_SENSITIVE');
    expect(without.CKA_ALLOWED_MECHANISMS).toEqual([Buffer.from(new BigUint64Array([0x1087n, 0x1085n]).buffer).toString('hex')]);
    expect(without.CKA_START_DATE).toEqual([Buffer.from('20260101').toString('hex')]);
  }, 60_000);

  it('a program\'s own change is seen by its next read of the object', async () => {
    const env = await relayEnv(join(s.alice.folder, 'write.sock'));
    // pkcs11js reads a size, then the value (two reads of one object: a burst), then changes the label and reads it again.
    const script = `${LOGGED_IN}
      const object = p.C_CreateObject(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA }, { type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_LABEL, value: 'before' },
      ]);
      const label = () => p.C_GetAttributeValue(session, object, [{ type: pkcs11js.CKA_LABEL }])[0].value.toString();
      const seen = [label(), label()];
      p.C_SetAttributeValue(session, object, [{ type: pkcs11js.CKA_LABEL, value: 'after' }]);
      seen.push(label());
      p.C_DestroyObject(session, object);
      let gone = 'readable';
      try { label(); } catch (e) { gone = e.message; }
      seen.push(gone);
      p.C_Finalize();
      console.log(JSON.stringify(seen));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', timeout: 30_000, cwd: join(import.meta.dirname, '..', '..') });
    expect(run.status, run.stderr).toBe(0);
    const seen = JSON.parse(run.stdout) as string[];
    expect(seen.slice(0, 3)).toEqual(['before', 'before', 'after']);
    expect(seen[3]).toMatch(/CKR_OBJECT_HANDLE_INVALID/);
  }, 60_000);
});
