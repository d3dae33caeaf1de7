import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { certificateWarnings, ClientRegistry, RegistryError } from '../../src/registry/client-registry.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'ntls-registry-'));
  dirs.push(d);
  return d;
}
function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as RegistryError).code;
  }
  return 'no error';
}

describe('ClientRegistry', () => {
  it('registers, finds by name and fingerprint, and removes', async () => {
    const registry = new ClientRegistry(folder());
    registry.reload();
    const made = await createSelfSignedCertificate({ commonName: 'c1', keyType: 'ecdsa-p256', usage: 'client' });
    const client = registry.register('c1', made.certificatePem, '10.0.0.5');
    const expected = new X509Certificate(made.certificatePem).fingerprint256.replaceAll(':', '').toLowerCase();
    expect(client.fingerprint).toBe(expected);
    expect(registry.byFingerprint(expected)?.name).toBe('c1');
    expect(registry.byName('c1')?.host).toBe('10.0.0.5');
    // A fresh registry over the same folder sees the same clients: the folder is the store.
    const again = new ClientRegistry(registry.folder);
    again.reload();
    expect(again.byName('c1')?.fingerprint).toBe(expected);
    registry.remove('c1');
    expect(registry.byName('c1')).toBeUndefined();
    expect(existsSync(join(registry.folder, 'c1.pem'))).toBe(false);
  });

  it('refuses a duplicate name, a bad name, a file that is not a certificate, an unknown client', async () => {
    const registry = new ClientRegistry(folder());
    registry.reload();
    const made = await createSelfSignedCertificate({ commonName: 'c1', keyType: 'ecdsa-p256', usage: 'client' });
    registry.register('c1', made.certificatePem, null);
    expect(errorCode(() => registry.register('c1', made.certificatePem, null))).toBe('NTLS_ERR_CLIENT_EXISTS');
    expect(errorCode(() => registry.register('../evil', made.certificatePem, null))).toBe('NTLS_ERR_CLIENT_NAME');
    expect(errorCode(() => registry.register('c2', 'hello', null))).toBe('NTLS_ERR_NOT_A_CERTIFICATE');
    expect(errorCode(() => registry.remove('nobody'))).toBe('NTLS_ERR_UNKNOWN_CLIENT');
    expect(registry.list().map((c) => c.name)).toEqual(['c1']);
  });

  it('reports files in the folder that are not certificates', () => {
    const registry = new ClientRegistry(folder());
    writeFileSync(join(registry.folder, 'junk.pem'), 'junk');
    const invalid = registry.reload();
    expect(invalid.map((i) => i.file)).toEqual([join(registry.folder, 'junk.pem')]);
    expect(registry.list()).toEqual([]);
  });

  it('a dropped file meets register\'s rules: a broken NAME.json is named (not NAME.pem), a bad name and a second copy of a certificate register no client', async () => {
    // Before: a broken NAME.json was reported as NAME.pem (and the operator told to remove that
    // good certificate); "e\"v il.pem" was registered; one certificate under two names linked as the last.
    const registry = new ClientRegistry(folder());
    const one = await createSelfSignedCertificate({ commonName: 'one', keyType: 'ecdsa-p256', usage: 'client' });
    const two = await createSelfSignedCertificate({ commonName: 'two', keyType: 'ecdsa-p256', usage: 'client' });
    const put = (file: string, text: string) => writeFileSync(join(registry.folder, file), text);
    put('aaa.pem', one.certificatePem);
    put('zzz.pem', one.certificatePem);
    put('e"v il.pem', two.certificatePem);
    put('broken.pem', two.certificatePem);
    put('broken.json', '{garbage');
    put('wrong.pem', (await createSelfSignedCertificate({ commonName: 'w', keyType: 'ecdsa-p256', usage: 'client' })).certificatePem);
    put('wrong.json', JSON.stringify({ host: 7, partitions: 'all' }));
    const invalid = registry.reload();
    expect(invalid.map((i) => [i.kind, i.file])).toEqual([
      ['registration', join(registry.folder, 'broken.json')],
      ['name', join(registry.folder, 'e"v il.pem')],
      ['registration', join(registry.folder, 'wrong.json')],
      ['duplicate', join(registry.folder, 'zzz.pem')],
    ]);
    expect(invalid.find((i) => i.kind === 'duplicate')?.problem).toBe('the certificate of client aaa');
    expect(registry.list().map((c) => c.name)).toEqual(['aaa']);
  });
});

describe('certificateWarnings: a small RSA key', () => {
  it('an RSA-512 certificate is said to be weak and unable to link', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 512, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
    const small = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02', name: 'CN=small', keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
      notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    }, webcrypto as unknown as Crypto);
    expect(certificateWarnings(small.toString('pem'))).toEqual([expect.stringMatching(/^its RSA key has 512 bits: .*cannot link$/)]);
  });
});

describe('certificateWarnings: what `ntls client register` warns of in a certificate that would still link', () => {
  it('none for what ntls-client create-cert makes; a server certificate, one not yet valid, a CA certificate each get theirs', async () => {
    const client = await createSelfSignedCertificate({ commonName: 'fine', keyType: 'ecdsa-p256', usage: 'client' });
    expect(certificateWarnings(client.certificatePem)).toEqual([]);
    const server = await createSelfSignedCertificate({ commonName: 'srv', keyType: 'ecdsa-p256', usage: 'server' });
    expect(certificateWarnings(server.certificatePem)).toEqual([expect.stringContaining('does not include TLS client authentication (clientAuth)')]);
    const future = await createSelfSignedCertificate({ commonName: 'later', keyType: 'ecdsa-p256', usage: 'client', notBefore: new Date('2030-01-01T00:00:00Z') });
    expect(certificateWarnings(future.certificatePem)).toEqual(['it is not valid before 2030-01-01T00:00:00.000Z: the client cannot link until then']);
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=ca', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    }, webcrypto as unknown as Crypto);
    expect(certificateWarnings(ca.toString('pem'))).toEqual([expect.stringContaining('is a CA certificate')]);
  });
});
