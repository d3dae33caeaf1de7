// A plain C application (fixtures/module-check.c, built with cc, loading the module with dlopen)
// on libntls-pkcs11.so: every mechanism with a parameter structure the module marshals, compared
// with node:crypto; output buffers (NULL queries, empty buffers, too small); threads; fork; a
// sign loop. Also: p11-kit-client.so 0.24.1 ends a cipher into an empty buffer through the
// daemon, whose answer is checked byte for byte.
import {
  createCipheriv, createECDH, createHash, createHmac, createPublicKey, verify as verifySignature, constants,
} from 'node:crypto';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKK, CKM, CKO, CKU } from '../../src/pkcs11/constants.js';
import { attr, encodeRequest, outputRequest, P11KIT_HANDSHAKE, request } from '../../src/protocol/p11kit/index.js';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runSignLoop } from '../../bench/stock/sign-loop.js';
import { link, makeClient } from '../support/daemon.js';
import { admin, explain, run, startRelay, type Relay } from '../support/e2e.js';
import { buildModuleCheck, here, moduleCheck, moduleTool, moduleWorld, PIN, P11KIT_CLIENT, type ModuleWorld } from './support.js';

let world: ModuleWorld;
let check: string;
let relay: Relay;

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const IV = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
const AAD = Buffer.from(Array.from({ length: 20 }, (_, i) => 0x50 + i));
const PLAIN = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff));

function encrypt(algorithm: string, key: Buffer, iv: Buffer | null, data: Buffer, padding = false): Buffer {
  const cipher = createCipheriv(algorithm, key, iv);
  cipher.setAutoPadding(padding);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

beforeAll(async () => {
  world = await moduleWorld('mona', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
  const files = { name: 'mona', dir: world.folder, cert: join(world.folder, 'mona.pem'), key: join(world.folder, 'monaKey.pem') };
  relay = await startRelay(world.daemon, files, join(world.work, 'relay.sock'));
});

afterAll(async () => {
  await relay?.stop();
  await world?.close();
});

describe('module-check (C, dlopen) on libntls-pkcs11.so', () => {
  it('every parameterised mechanism gives what node:crypto gives', async () => {
    const peer = createECDH('prime256v1');
    const peerPoint = peer.generateKeys();
    const { result, values } = await moduleCheck(check, world.module, ['crypto', '0', PIN, peerPoint.toString('hex')], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('interface')).toBe('PKCS 11 3.0');
    // CKA_WRAP_TEMPLATE and CKA_ALLOWED_MECHANISMS set, then read back in PKCS#11's three steps.
    expect(values.get('attribute-arrays')).toBe('ok');
    const hex = (name: string) => Buffer.from(values.get(name) ?? '', 'hex');

    // AES-GCM: IV 12 bytes, AAD, 128-bit tag; both CK_GCM_PARAMS spellings; a changed byte is refused.
    const gcm = createCipheriv('aes-256-gcm', KEY, IV.subarray(0, 12));
    gcm.setAAD(AAD);
    const sealed = Buffer.concat([gcm.update(PLAIN.subarray(0, 50)), gcm.final(), gcm.getAuthTag()]);
    expect(hex('gcm').toString('hex')).toBe(sealed.toString('hex'));
    expect(values.get('gcm-tampered')).toBe('CKR_ENCRYPTED_DATA_INVALID');
    expect(hex('cbc').equals(encrypt('aes-256-cbc', KEY, IV, PLAIN))).toBe(true);
    expect(hex('cbc-pad').equals(encrypt('aes-256-cbc', KEY, IV, PLAIN.subarray(0, 50), true))).toBe(true);
    expect(hex('ctr').equals(encrypt('aes-256-ctr', KEY, IV, PLAIN.subarray(0, 50)))).toBe(true);
    expect(values.get('cbc-short-iv')).toBe('CKR_MECHANISM_PARAM_INVALID');
    expect(hex('ecb').equals(encrypt('aes-256-ecb', KEY, null, PLAIN.subarray(0, 32)))).toBe(true);

    // AES key wrap, RFC 3394 and RFC 5649, of the 16-byte key f0 ef ... e1.
    const inner = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xf0 - i));
    const wrap = (algorithm: string, iv: Buffer) => {
      const c = createCipheriv(algorithm, KEY, iv);
      return Buffer.concat([c.update(inner), c.final()]);
    };
    expect(hex('kw').equals(wrap('id-aes256-wrap', Buffer.from('a6a6a6a6a6a6a6a6', 'hex')))).toBe(true);
    expect(hex('kwp').equals(wrap('id-aes256-wrap-pad', Buffer.from('a65959a6', 'hex')))).toBe(true);

    expect(hex('hmac').equals(createHmac('sha256', KEY).update(PLAIN).digest())).toBe(true);
    expect(hex('sha256').equals(createHash('sha256').update(PLAIN).digest())).toBe(true);

    // ECDH1 derive (CKD_NULL) with the peer's point: the secret node computes from the other side.
    const point = hex('ec-point').subarray(2); // CKA_EC_POINT is a DER OCTET STRING
    expect(hex('ecdh-secret').equals(peer.computeSecret(point))).toBe(true);
    // ECDH1_COFACTOR_DERIVE, the same structure: P-256's cofactor is 1, so the same secret.
    expect(hex('ecdh-cofactor-secret').toString('hex')).toBe(peer.computeSecret(point).toString('hex'));

    // ECDSA-SHA256 (r || s) and Ed25519 verify with node.
    const ecKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
    expect(verifySignature('sha256', PLAIN, { key: ecKey, dsaEncoding: 'ieee-p1363' }, hex('ecdsa-sha256'))).toBe(true);
    const edKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: hex('ed-point').subarray(2).toString('base64url') }, format: 'jwk' });
    expect(verifySignature(null, PLAIN, edKey, hex('eddsa'))).toBe(true);

    // SHA256-RSA-PKCS-PSS (MGF1-SHA256, 32-byte salt); RSA-OAEP round trip in the token.
    const rsaKey = createPublicKey({ key: { kty: 'RSA', n: hex('rsa-modulus').toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    expect(verifySignature('sha256', PLAIN, { key: rsaKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, hex('rsa-pss'))).toBe(true);
    expect(values.get('oaep')).toBe('ok');

    expect(values.get('private-value')).toBe('CKR_ATTRIBUTE_SENSITIVE unavailable');
    expect(values.get('closed-session')).toBe('CKR_SESSION_HANDLE_INVALID');
    expect(values.get('done')).toBe(undefined); // "done" is a line without a value
    expect(result.stdout).toMatch(/^done$/m);
  });

  it('a final into an empty buffer ends the operation; after a NULL length query the final still delivers', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['empty-final', '0', PIN], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('empty-buffer-final')).toBe('ok');
    // The module tells NULL from empty (protocol 2): the length query leaves the operation active.
    expect(values.get('final-after-null-query')).toBe('CKR_OK');
    expect(values.get('init-after')).toBe('CKR_OK');
  });

  it('a plain C application signs in a loop', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['sign-loop', '0', PIN, '300'], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('signatures')).toMatch(/^300 /);
  });

  it('16 threads, each with its own session on the one link, sign at once', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['sign-threads', '0', PIN, '16', '25'], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('threads')).toBe('16 signatures=400');
    expect(values.get('callback-locks')).toBe('none'); // CKF_OS_LOCKING_OK: the module's own mutex
  });

  it('with the application\'s mutex callbacks (no CKF_OS_LOCKING_OK) the module locks with them', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['sign-threads', '0', PIN, '8', '10'], { env: { ...world.env, MODULE_CHECK_CALLBACKS: '1' } });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('threads')).toBe('8 signatures=80');
    expect(values.get('callback-locks')).toBe('all');
  });

  it('fork: the child is uninitialised until its C_Initialize, then links on its own; the parent goes on', async () => {
    const { result, values } = await moduleCheck(check, world.module, ['fork', '0', PIN], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('child-before-initialize')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect(values.get('child-parent-session')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect(values.get('child')).toBe('ok');
    expect(values.get('parent')).toBe('ok');
  });

  it('through a relay socket (NTLS_PKCS11_RELAY=unix:path=...) as well as its own relay', async () => {
    const env = { ...world.env, NTLS_PKCS11_RELAY: `unix:path=${relay.socketPath}` };
    const { result, values } = await moduleCheck(check, world.module, ['sign-loop', '0', PIN, '50'], { env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('signatures')).toMatch(/^50 /);
  });

  it('bench:stock\'s application (bench/stock/sign-loop.c) runs its ntls-module cell: P-256 and RSA-2048, 2 processes, one relay socket', async () => {
    for (const args of [['EC:prime256v1', 'bench-p256', 'b1'], ['rsa:2048', 'bench-rsa', 'b2']]) {
      const r = await moduleTool(world, ['--slot', '0', '--login', '--pin', PIN, '--keypairgen', '--key-type', args[0]!, '--label', args[1]!, '--id', args[2]!]);
      expect(r.status, explain(r)).toBe(0);
    }
    const pkcs11js = dirname(createRequire(import.meta.url).resolve('pkcs11js/package.json'));
    const binary = join(world.work, 'bin', 'sign-loop');
    const built = await run('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-I', join(pkcs11js, 'includes', 'pkcs11'), '-o', binary,
      join(here, '..', '..', 'bench', 'stock', 'sign-loop.c'), '-ldl']);
    expect(built.status, explain(built)).toBe(0);
    const env = { ...process.env, ...world.env, NTLS_PKCS11_RELAY: `unix:path=${relay.socketPath}` };
    for (const [key, mechanism, bytes] of [['bench-p256', 'ecdsa', 64], ['bench-rsa', 'rsa-pkcs', 256]] as const) {
      const result = await runSignLoop(binary, {
        module: world.module, token: 'mona-token', pin: PIN, key, mechanism, seconds: 0.5, warmupSeconds: 0.1, processes: 2, env,
      });
      expect(result.signatures, key).toBeGreaterThan(0);
      expect(result.perProcess).toHaveLength(2);
      expect(result.signatureBytes).toBe(bytes);
    }
  });
});

describe('p11-kit-client.so 0.24.1: a cipher final into an empty buffer (the daemon\'s answer to protocol 0)', () => {
  it('the stock client takes the answer: the final succeeds and the next operation starts', async () => {
    const env = { P11_KIT_SERVER_ADDRESS: `unix:path=${relay.socketPath}` };
    const { result, values } = await moduleCheck(check, P11KIT_CLIENT, ['empty-final', '0', PIN], { env });
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('empty-buffer-final')).toBe('ok');
    // Protocol 0 cannot tell the NULL query from the empty buffer: the query delivered the
    // (empty) output, so the operation had ended when the application asked again.
    expect(values.get('final-after-null-query')).toBe('CKR_OPERATION_NOT_INITIALIZED');
    expect(values.get('init-after')).toBe('CKR_OK');
  });

  it('byte for byte: protocol 0 gets an empty byte array for 0 bytes, the length for more; protocol 2 keeps length answers', async () => {
    const client = await makeClient('bytes');
    writeFileSync(join(world.work, 'bytes.pem'), client.certificatePem);
    await admin(world.daemon, 'client', 'register', '-c', 'bytes', '--cert', join(world.work, 'bytes.pem'), '--hostname', '127.0.0.1');
    await admin(world.daemon, 'client', 'assign-partition', '-c', 'bytes', '-p', world.serial);
    for (const version of [0, 2]) {
      const l = await link(world.daemon, client, { protocolVersion: version });
      const send = async (req: Parameters<typeof encodeRequest>[0]) => {
        const body = encodeRequest(req, { version });
        if (!body.ok) throw body.error;
        return (await l.request(body.value)).body;
      };
      const expectOk = (answer: Buffer) => expect(answer.readUInt32BE(0), answer.toString('hex')).not.toBe(0);
      expectOk(await send(request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: Buffer.from([0]) })));
      const opened = await send(request('C_OpenSession', { slotId: 0, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
      const session = Number(opened.readBigUInt64BE(opened.length - 8));
      expectOk(await send(request('C_Login', { session, userType: CKU.USER, pin: Buffer.from(PIN) })));
      const created = await send(request('C_CreateObject', { session, template: [
        attr.ulong(CKA.CLASS, CKO.SECRET_KEY), attr.ulong(CKA.KEY_TYPE, CKK.AES), attr.bool(CKA.TOKEN, false),
        attr.bytes(CKA.VALUE, KEY.subarray(0, 16)), attr.bool(CKA.ENCRYPT, true),
      ] }));
      const key = Number(created.readBigUInt64BE(created.length - 8));
      const ecb = { type: CKM.AES_ECB, parameter: null };
      expectOk(await send(request('C_EncryptInit', { session, mechanism: ecb, key })));
      expectOk(await send(request('C_EncryptUpdate', { session, part: PLAIN.subarray(0, 32), encryptedPart: outputRequest(32) })));
      // C_EncryptFinal, room 0 (what 0.24.1 sends for NULL and for an empty buffer alike).
      const final = await send(request('C_EncryptFinal', { session, lastEncryptedPart: outputRequest(null) }));
      // call id 32, signature "ay", then: byte 1 + length 0 (an empty array), or byte 0 + length 0 (the length only).
      expect(final.toString('hex')).toBe(version === 0 ? '00000020000000026179' + '01' + '00000000' : '00000020000000026179' + '00' + '00000000');
      const again = await send(request('C_EncryptInit', { session, mechanism: ecb, key }));
      // Protocol 0: the operation ended (call id 29, signature ""). Protocol 2: the length query
      // left it active (ERROR, signature "u", CKR_OPERATION_ACTIVE).
      expect(again.toString('hex')).toBe(version === 0 ? '0000001d00000000' : '00000000000000017500000000000000' + '90');
      if (version === 0) {
        // A query whose output is not empty still gets the length only, and the operation goes on.
        const query = await send(request('C_EncryptUpdate', { session, part: PLAIN.subarray(0, 16), encryptedPart: outputRequest(null) }));
        expect(query.toString('hex')).toBe('0000001f000000026179' + '00' + '00000010');
        const real = await send(request('C_EncryptUpdate', { session, part: PLAIN.subarray(0, 16), encryptedPart: outputRequest(16) }));
        expect(real.toString('hex')).toBe('0000001f000000026179' + '01' + '00000010' + encrypt('aes-128-ecb', KEY.subarray(0, 16), null, PLAIN.subarray(0, 16)).toString('hex'));
      }
      await l.close();
    }
  });
});
