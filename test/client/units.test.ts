// The client's pure parts, without a daemon: configuration, templates, ciphers, mechanism
// names, failure lines, atomic writes.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/files/atomic-file.js';
import { decryptionFor, encryptionFor } from '../../src/client/cipher.js';
import { clientHome, findServer, loadClientConfig, parseEndpoint, saveClientConfig, ServerEntrySchema } from '../../src/client/config.js';
import { ClientError } from '../../src/client/errors.js';
import { explainFailure, isClientRefusal, serverNameFor } from '../../src/client/failure.js';
import { LinkError } from '../../src/client/link.js';
import { signingMechanism } from '../../src/client/mechanism-names.js';
import { ecdsaDerToRaw, ecdsaRawToDer } from '../../src/client/signature-format.js';
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { fromWireAttribute, toWireAttribute } from '../../src/client/template.js';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../src/pkcs11/constants.js';
import { Pkcs11Remote } from '../../src/client/pkcs11-remote.js';
import type { CallChannel } from '../../src/client/rpc-connection.js';
import { TokenSession } from '../../src/client/token-session.js';
import { RELAY_LINE_QUIET_MS, noSlotsLine, throttleLine } from '../../src/cli/relay-commands.js';

const folder = mkdtempSync(join(tmpdir(), 'ntls-client-units-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('configuration', () => {
  it('the folder: NTLS_CLIENT_HOME, then XDG_CONFIG_HOME, then ~/.config', () => {
    expect(clientHome({ NTLS_CLIENT_HOME: '/a/b', XDG_CONFIG_HOME: '/x' })).toBe('/a/b');
    expect(clientHome({ XDG_CONFIG_HOME: '/x' })).toBe('/x/ntls-client');
    expect(clientHome({})).toBe(join(homedir(), '.config', 'ntls-client'));
  });

  it('defaults without a file; saved owner-only and read back; bad files refused with a code', () => {
    const empty = loadClientConfig(folder);
    expect(empty).toEqual({ client: {}, servers: [], haGroups: [], receiveTimeout: 30, tcpKeepalive: { enabled: true, idle: 60 } });
    saveClientConfig(folder, { ...empty, servers: [{ name: 'a', host: 'h', port: 1792, certificate: 'servers/a.pem' }] });
    expect(statSync(join(folder, 'client.json')).mode & 0o777).toBe(0o600);
    expect(findServer(loadClientConfig(folder), undefined).name).toBe('a');
    expect(codeOf(() => findServer(loadClientConfig(folder), 'b'))).toBe('NTLS_ERR_UNKNOWN_SERVER');
    for (const bad of ['{', '{"servers":[{"name":"a b","host":"h","certificate":"c"}]}', '{"colour":"red"}', '{"servers":[{"name":"a","host":"h","port":70000,"certificate":"c"}]}']) {
      writeFileSync(join(folder, 'client.json'), bad);
      expect(codeOf(() => loadClientConfig(folder))).toBe('NTLS_ERR_CLIENT_CONFIG');
    }
  });
});

describe('templates', () => {
  it('plain values become the kinds p11-kit gives each attribute, and back', () => {
    expect(toWireAttribute({ type: CKA.TOKEN, value: true }).value).toEqual({ kind: 'byte', value: 1 });
    expect(toWireAttribute({ type: CKA.VALUE_LEN, value: 32 }).value).toEqual({ kind: 'ulong', value: 32 });
    expect(toWireAttribute({ type: CKA.LABEL, value: 'k' }).value).toEqual({ kind: 'bytes', value: Buffer.from('k') });
    expect(toWireAttribute({ type: CKA.ALLOWED_MECHANISMS, value: [CKM.AES_GCM] }).value).toEqual({ kind: 'mechanisms', value: [CKM.AES_GCM] });
    expect(toWireAttribute({ type: CKA.DESTROYABLE, value: false }).value).toEqual({ kind: 'bytes', value: Buffer.from([0]) });
    expect(fromWireAttribute({ type: CKA.SIGN, value: { kind: 'byte', value: 1 } })).toEqual({ type: CKA.SIGN, value: true });
    expect(fromWireAttribute({ type: CKA.VALUE, value: null, length: -1 })).toEqual({ type: CKA.VALUE, value: null });
    expect(() => toWireAttribute({ type: CKA.TOKEN, value: 'yes' })).toThrow(Pkcs11Error);
    expect((() => { try { toWireAttribute({ type: CKA.VALUE_LEN, value: true }); } catch (e) { return (e as Pkcs11Error).rv; } return 0; })()).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });
});

describe('ciphers and mechanisms', () => {
  it('the IV travels in front and is read back; fresh per message', () => {
    for (const cipher of ['aes-gcm', 'aes-cbc-pad', 'aes-ctr'] as const) {
      const a = encryptionFor(cipher);
      const b = encryptionFor(cipher);
      expect(a.prefix.equals(b.prefix)).toBe(false);
      const back = decryptionFor(cipher, Buffer.concat([a.prefix, Buffer.from('ct')]));
      expect(back.mechanism).toEqual(a.mechanism);
      expect(back.ciphertext.toString()).toBe('ct');
    }
    expect(codeOf(() => decryptionFor('aes-gcm', Buffer.alloc(5)))).toBe('NTLS_ERR_ARGUMENT');
  });

  it('signing mechanisms by name, PSS with its parameters', () => {
    expect(signingMechanism('ecdsa-sha256')).toEqual({ type: CKM.ECDSA_SHA256, parameter: null });
    expect(signingMechanism('CKM_SHA256_RSA_PKCS_PSS').parameter).toEqual({ kind: 'pss', hashAlg: CKM.SHA256, mgf: 2, saltLength: 32 });
    expect(codeOf(() => signingMechanism('AES_GCM'))).toBe('NTLS_ERR_ARGUMENT');
  });
});

describe('failure lines', () => {
  const server = { name: 'hsm1', host: '10.0.0.1', port: 1792 };
  it('each cause has its code and one line naming the fix', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [new LinkError('NTLS_ERR_SERVER_CERT_MISMATCH', 'x'), 'NTLS_ERR_SERVER_CERT_MISMATCH', /--replace.*compare its fingerprint with `ntls cert show` run on the server/],
      [new LinkError('NTLS_ERR_TLS', 'connect ECONNREFUSED', { errno: 'ECONNREFUSED', stage: 'connect' }), 'NTLS_ERR_SERVER_DOWN', /ntls runs there/],
      [new LinkError('NTLS_ERR_LINK_CLOSED', 'x', { stage: 'identity' }), 'NTLS_ERR_CLIENT_REFUSED', /ntls client register/],
      [new LinkError('NTLS_ERR_TLS', 'alert', { errno: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', stage: 'connect' }), 'NTLS_ERR_CLIENT_REFUSED', /register/],
      [new LinkError('NTLS_ERR_TIMEOUT', 'x', { stage: 'identity' }), 'NTLS_ERR_TIMEOUT', /receiveTimeout/],
      [new LinkError('NTLS_ERR_TIMEOUT', 'x', { stage: 'connect' }), 'NTLS_ERR_TIMEOUT', /did not complete the TLS handshake.*host and port/],
      [new LinkError('NTLS_ERR_NOT_NTLS', 'x'), 'NTLS_ERR_NOT_NTLS', /host and port/],
      [new Pkcs11Error(CKR.PIN_INCORRECT), 'CKR_PIN_INCORRECT', /PIN is wrong/],
      [new ClientError('NTLS_ERR_NO_PIN', 'no pin', 'give --pin'), 'NTLS_ERR_NO_PIN', /give --pin/],
    ];
    for (const [error, code, fix] of cases) {
      const failure = explainFailure(error, { server });
      expect(failure.code).toBe(code);
      expect(failure.line).toMatch(fix);
      expect(failure.line).not.toContain('\n');
    }
    expect(isClientRefusal(new LinkError('NTLS_ERR_LINK_CLOSED', 'x', { stage: 'open' }))).toBe(false);
  });
});

describe('atomic writes', () => {
  it('a write that fails leaves the old file and no temporary', () => {
    const target = join(folder, 'out.bin');
    writeFileAtomic(target, 'first');
    writeFileAtomic(target, 'second');
    expect(readFileSync(target, 'utf8')).toBe('second');
    expect(() => writeFileAtomic(join(folder, 'missing', 'x'), 'y')).toThrow();
    expect(readdirSync(folder).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('ECDSA signature encodings', () => {
  it('r‖s to DER and back equals node:crypto\'s encodings, P-256 to P-521', () => {
    for (const [curve, half] of [['prime256v1', 32], ['secp384r1', 48], ['secp521r1', 66]] as const) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 20; i++) {
        const data = Buffer.from(`message ${i}`);
        const der = nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
        const raw = ecdsaDerToRaw(der, half);
        expect(raw).toHaveLength(2 * half);
        expect(ecdsaRawToDer(raw).equals(der)).toBe(true);
      }
    }
    expect(codeOf(() => ecdsaDerToRaw(Buffer.from('3003020101', 'hex'), 32))).toBe('NTLS_ERR_ARGUMENT');
    expect(codeOf(() => ecdsaRawToDer(Buffer.alloc(3)))).toBe('NTLS_ERR_ARGUMENT');
  });
});

describe('--server host[:port] in flag mode', () => {
  it('reads host names, IPv4, and IPv6 bare or in brackets; refuses the rest', () => {
    expect(parseEndpoint('hsm1.example')).toEqual({ host: 'hsm1.example', port: 1792 });
    expect(parseEndpoint('hsm1:24100')).toEqual({ host: 'hsm1', port: 24100 });
    expect(parseEndpoint('10.0.0.5:1793')).toEqual({ host: '10.0.0.5', port: 1793 });
    expect(parseEndpoint('::1')).toEqual({ host: '::1', port: 1792 });
    expect(parseEndpoint('fe80::1')).toEqual({ host: 'fe80::1', port: 1792 });
    expect(parseEndpoint('[::1]')).toEqual({ host: '::1', port: 1792 });
    expect(parseEndpoint('[2001:db8::7]:1800')).toEqual({ host: '2001:db8::7', port: 1800 });
    for (const bad of ['hsm1:0', 'hsm1:70000', 'a b', '[::1]x', '']) expect(parseEndpoint(bad), bad).toBeNull();
  });
});

describe('the name a mismatch line suggests', () => {
  it('is one add-server --name accepts, for IPv4, IPv6 and host names', () => {
    for (const host of ['127.0.0.1', '::1', 'fe80::1%eth0', 'hsm1.example', '2001:db8::7', `${'x'.repeat(60)}.${'y'.repeat(60)}`]) {
      expect(ServerEntrySchema.safeParse({ name: serverNameFor(host), host, port: 1792, certificate: 'x' }).success, host).toBe(true);
    }
  });
});

describe('the no-slot line of a --listen relay', () => {
  it('is written at most once a minute, the next one counting the links not told', () => {
    let clock = 0;
    const told: number[] = [];
    const onNoSlots = throttleLine((untold) => told.push(untold), () => clock);
    onNoSlots();
    clock += 1_000; onNoSlots();
    clock += 1_000; onNoSlots();
    expect(told).toEqual([0]);
    clock += RELAY_LINE_QUIET_MS; onNoSlots();
    expect(told).toEqual([0, 2]);
    clock += RELAY_LINE_QUIET_MS; onNoSlots();
    expect(told).toEqual([0, 2, 0]);
  });

  it('says how many links it did not tell', () => {
    expect(noSlotsLine('127.0.0.1:1792', 'bob', 2)).toBe('ntls-client: 127.0.0.1:1792 lists no slot for client bob (2 more links since the line before): no partition is assigned to it; ask its administrator to run `ntls client assign-partition --client bob --partition NAME`\n');
    expect(noSlotsLine('127.0.0.1:1792', 'bob')).not.toMatch(/since/);
  });
});

describe('a mechanism the partition does not offer', () => {
  it('names the mechanism the error carries (the default one a command chose, say)', () => {
    const failure = explainFailure(new Pkcs11Error(CKR.MECHANISM_INVALID, 'CKM_ECDSA_SHA256, the default for this key; choose one the partition offers with -m'));
    expect(failure.code).toBe('CKR_MECHANISM_INVALID');
    expect(failure.line).toContain('CKM_ECDSA_SHA256, the default for this key');
  });

  it('a locked PIN says what unlocks a Crypto Officer and that a locked SO means a new partition (nobody can reset it)', () => {
    const failure = explainFailure(new Pkcs11Error(CKR.PIN_LOCKED));
    expect(failure.code).toBe('CKR_PIN_LOCKED');
    expect(failure.line).toContain('ntls-client init-pin');
    expect(failure.line).toContain('a locked SO PIN cannot be');
  });
});

describe('sign with the default mechanism of a key, on a partition that does not offer it', () => {
  const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
  /** A server that holds one P-256 private key and offers no mechanism for it. */
  const channel: CallChannel = {
    endpoint: { name: 'fake' },
    call: ((name: string) => {
      if (name === 'C_OpenSession') return Promise.resolve({ session: 1 });
      if (name === 'C_GetAttributeValue') {
        return Promise.resolve({
          result: CKR.OK,
          template: [
            { type: CKA.CLASS, value: { kind: 'ulong', value: CKO.PRIVATE_KEY } },
            { type: CKA.KEY_TYPE, value: { kind: 'ulong', value: CKK.EC } },
            { type: CKA.EC_PARAMS, value: { kind: 'bytes', value: P256_PARAMS } },
          ],
        });
      }
      if (name === 'C_SignInit') return Promise.reject(new Pkcs11Error(CKR.MECHANISM_INVALID, 'C_SignInit'));
      return Promise.reject(new Error(`unexpected ${name}`));
    }) as CallChannel['call'],
    close: () => Promise.resolve(),
  };

  it('names the default it chose and the option that chooses another; a mechanism given is not called a default', async () => {
    const token = await TokenSession.open(new Pkcs11Remote(channel));
    const defaulted = await token.sign(5, Buffer.alloc(32)).catch((e: unknown) => e);
    expect(defaulted).toBeInstanceOf(Pkcs11Error);
    expect((defaulted as Pkcs11Error).rv).toBe(CKR.MECHANISM_INVALID);
    expect((defaulted as Pkcs11Error).message).toMatch(/CKM_ECDSA_SHA256, the default for this key; choose one the partition offers with -m/);
    const given = await token.sign(5, Buffer.alloc(32), { type: CKM.ECDSA, parameter: null }).catch((e: unknown) => e);
    expect((given as Pkcs11Error).message).not.toMatch(/default/);
  });
});
