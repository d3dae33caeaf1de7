// The client's TLS contexts are made once per credentials (src/client/tls-contexts.ts): the same
// settings give the same context, other PEM text or settings a new one; fingerprints are the
// certificate's SHA-256 as a TLS peer presents it.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateFingerprint, clientTlsContext } from '../../src/client/tls-contexts.js';
import { makeClient } from '../support/daemon.js';

describe('client TLS contexts', () => {
  it('one context per credentials and settings; a new certificate is a new context', async () => {
    const a = await makeClient('context-a');
    const b = await makeClient('context-b');
    const settingsA = { certificatePem: a.certificatePem, keyPem: a.keyPem };
    expect(clientTlsContext(settingsA)).toBe(clientTlsContext({ ...settingsA }));
    expect(clientTlsContext(settingsA)).not.toBe(clientTlsContext({ certificatePem: b.certificatePem, keyPem: b.keyPem }));
    expect(clientTlsContext(settingsA)).not.toBe(clientTlsContext({ ...settingsA, maxVersion: 'TLSv1.2' }));
    expect(certificateFingerprint(a.certificatePem)).toBe(new X509Certificate(a.certificatePem).fingerprint256);
  });

  it('a key that does not match the certificate is refused when the context is made', async () => {
    const a = await makeClient('context-c');
    const b = await makeClient('context-d');
    expect(() => clientTlsContext({ certificatePem: a.certificatePem, keyPem: b.keyPem })).toThrow();
  });
});
