// Self-signed certificates for the server and for clients, made with @peculiar/x509 on
// Node's WebCrypto. Keys are written as PKCS#8 PEM, certificates as PEM.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export type KeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

export interface CertificateRequest {
  commonName: string;
  keyType: KeyType;
  usage: 'server' | 'client';
  /** DNS names and IP addresses for the subjectAltName. */
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

export interface CertificateAndKey {
  certificatePem: string;
  keyPem: string;
}

function algorithmOf(keyType: KeyType): { generate: RsaHashedKeyGenParams | EcKeyGenParams; sign: Algorithm | EcdsaParams } {
  switch (keyType) {
    case 'ecdsa-p256':
      return { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } };
    case 'ecdsa-p384':
      return { generate: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } };
    default: {
      const bits = Number(keyType.slice(4));
      return {
        generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        sign: { name: 'RSASSA-PKCS1-v1_5' },
      };
    }
  }
}

function toPem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

export async function createSelfSignedCertificate(request: CertificateRequest): Promise<CertificateAndKey> {
  const { generate, sign } = algorithmOf(request.keyType);
  const keys = await webcrypto.subtle.generateKey(generate, true, ['sign', 'verify']);
  const certificatePem = await certify(request, keys, sign);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certificatePem, keyPem: toPem('PRIVATE KEY', pkcs8) };
}

/** A self-signed certificate for an existing EC P-256 key (the server key kept in the HSM). */
export async function createSelfSignedCertificateForKey(request: Omit<CertificateRequest, 'keyType'>, privateKeyPem: string): Promise<string> {
  const { generate, sign } = algorithmOf('ecdsa-p256');
  const privateKey = createPrivateKey(privateKeyPem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, generate, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, generate, true, ['verify']),
  };
  pkcs8.fill(0);
  return certify({ ...request, keyType: 'ecdsa-p256' }, keys, sign);
}

async function certify(request: CertificateRequest, keys: CryptoKeyPair, sign: Algorithm | EcdsaParams): Promise<string> {
  const notBefore = request.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = request.notAfter ?? new Date(notBefore.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const altNames: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.ExtendedKeyUsageExtension([request.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (altNames.length) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
  const cn = request.commonName.replace(/([,+"\\<>;=])/g, '\\$1');
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + randomBytes(15).toString('hex'),
    name: `CN=${cn}`,
    notBefore,
    notAfter,
    signingAlgorithm: sign,
    keys,
    extensions,
  });
  return certificate.toString('pem') + '\n';
}
