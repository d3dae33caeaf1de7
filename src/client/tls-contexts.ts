// The client's TLS contexts and the pinned server fingerprints, made once per credentials and
// kept: a link opened for every program that starts (pkcs11-tool in a script loop, through the
// relay) would otherwise parse the key and both certificates each time, a quarter of the
// relay's CPU in bench:logins. New PEM text (a renewed certificate, a regenerated server one)
// is a new entry; a few are kept, the oldest dropped.

import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

const KEPT = 16;

export interface ClientTlsSettings {
  certificatePem: string;
  keyPem: string;
  ciphers?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

function remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    value = make();
    if (cache.size >= KEPT) cache.delete(cache.keys().next().value!);
    cache.set(key, value);
  }
  return value;
}

const contexts = new Map<string, SecureContext>();
const fingerprints = new Map<string, string>();

/** The TLS context of these client credentials and settings. */
export function clientTlsContext(settings: ClientTlsSettings): SecureContext {
  const key = JSON.stringify([settings.certificatePem, settings.keyPem, settings.ciphers ?? null, settings.maxVersion ?? null]);
  return remember(contexts, key, () => createSecureContext({
    cert: settings.certificatePem, key: settings.keyPem, ciphers: settings.ciphers, maxVersion: settings.maxVersion,
  }));
}

/** The SHA-256 fingerprint of a PEM certificate, as getPeerCertificate() gives it. */
export function certificateFingerprint(pem: string): string {
  return remember(fingerprints, pem, () => new X509Certificate(pem).fingerprint256);
}
