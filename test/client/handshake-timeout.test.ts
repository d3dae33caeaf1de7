// A peer that accepts TCP and then says nothing (a wrong port, a stuck proxy) ends set-up after
// the handshake timeout, not the longer receive timeout, with a line that points at host and port.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate, type CertificateAndKey } from '../../src/certificates/self-signed.js';
import { explainFailure } from '../../src/client/failure.js';
import { LinkError, openIdentifiedLink } from '../../src/client/link.js';

let credentials: CertificateAndKey;
let silent: Server;
const held: Socket[] = [];

beforeAll(async () => {
  credentials = await createSelfSignedCertificate({ commonName: 'handshake-timeout', keyType: 'ecdsa-p256', usage: 'client' });
  silent = createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});
afterAll(() => {
  for (const socket of held) socket.destroy();
  silent.close();
});

function linkTo(port: number, timeouts: { timeoutMs: number; handshakeTimeoutMs?: number }): Promise<unknown> {
  return openIdentifiedLink({
    host: '127.0.0.1', port, clientName: 'c', certificatePem: credentials.certificatePem, keyPem: credentials.keyPem,
    serverCertificatePem: credentials.certificatePem, ...timeouts,
  }).then(() => null, (error: unknown) => error);
}

describe('handshake timeout', () => {
  it('a silent peer fails set-up after the handshake timeout, though the receive timeout is longer', async () => {
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const error = await linkTo(port, { timeoutMs: 60_000, handshakeTimeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(error).toBeInstanceOf(LinkError);
    const link = error as LinkError;
    expect([link.code, link.stage]).toEqual(['NTLS_ERR_TIMEOUT', 'connect']);
    expect(link.message).toContain('accepted the connection but did not answer the TLS handshake within 300 ms');
    const failure = explainFailure(link, { server: { name: 'hsm1', host: '127.0.0.1', port } });
    expect(failure.line).toMatch(/did not complete the TLS handshake.*host and port/);
    expect(failure.line).not.toContain('receiveTimeout');
  });

  it('the handshake timeout never exceeds the receive timeout', async () => {
    const error = await linkTo((silent.address() as AddressInfo).port, { timeoutMs: 200, handshakeTimeoutMs: 60_000 });
    expect((error as LinkError).message).toContain('within 200 ms');
  });
});
