// The receive timeout on an open link: a server that completes set-up and then answers nothing
// fails every call in flight with NTLS_ERR_TIMEOUT; a server that answers steadily, however
// long its queue, does not time out.
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate, type CertificateAndKey } from '../../src/certificates/self-signed.js';
import { LinkError } from '../../src/client/link.js';
import { NtlsClient } from '../../src/client/ntls-client.js';
import { FrameReader, serializeFrame } from '../../src/protocol/frame.js';
import { encodeIdentity } from '../../src/protocol/identity.js';
import { encodeResponse, response } from '../../src/protocol/p11kit/index.js';

let serverCredentials: CertificateAndKey;
let clientCredentials: CertificateAndKey;

/** A fake NTLS server: set-up as the real one, then answers frames after `delayMs`, or never (null). */
function fakeServer(delayMs: number | null): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: serverCredentials.certificatePem, key: serverCredentials.keyPem, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
    let stage: 'identity' | 'version' | 'frames' = 'identity';
    let pending = Buffer.alloc(0);
    // One call at a time, as the daemon works: each answer waits for the previous one.
    let busyUntil = 0;
    const frames = new FrameReader(1 << 20);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      if (stage === 'frames') {
        frames.push(chunk);
        let frame;
        while ((frame = frames.next())) {
          if (delayMs === null) continue;
          const call = frame.body.readUInt32BE(0);
          // Answer C_Initialize (1) and C_GetSlotList (4); nothing else is asked here.
          const body = call === 1 ? encodeResponse(response('C_Initialize', {})) : encodeResponse(response('C_GetSlotList', { slotList: [0] }));
          const answer = serializeFrame({ callCode: frame.callCode, options: Buffer.alloc(0), body: body.ok ? body.value : Buffer.alloc(0) });
          const at = call === 1 ? Date.now() : Math.max(Date.now(), busyUntil) + delayMs;
          busyUntil = at;
          setTimeout(() => socket.write(answer), at - Date.now());
        }
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      if (stage === 'identity') {
        const end = pending.indexOf(0x0a);
        if (end < 0) return;
        socket.write(encodeIdentity('server', 'fake'));
        pending = pending.subarray(end + 1);
        stage = 'version';
      }
      if (stage === 'version' && pending.length >= 1) {
        socket.write(Buffer.from([0]));
        stage = 'frames';
        const rest = pending.subarray(1);
        pending = Buffer.alloc(0);
        if (rest.length) socket.emit('data', rest);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

function clientOf(port: number, timeoutMs: number): NtlsClient {
  return new NtlsClient({
    clientName: 'tester', certificatePem: clientCredentials.certificatePem, keyPem: clientCredentials.keyPem, timeoutMs,
    servers: [{ name: 'fake', host: '127.0.0.1', port, certificatePem: serverCredentials.certificatePem }],
  });
}

const servers: Server[] = [];
beforeAll(async () => {
  serverCredentials = await createSelfSignedCertificate({ commonName: 'fake', keyType: 'ecdsa-p256', usage: 'server' });
  clientCredentials = await createSelfSignedCertificate({ commonName: 'tester', keyType: 'ecdsa-p256', usage: 'client' });
});
afterAll(() => {
  for (const s of servers) s.close();
});

describe('receive timeout', () => {
  it('a server that stops answering fails every call in flight with NTLS_ERR_TIMEOUT', async () => {
    const { server, port } = await fakeServer(null);
    servers.push(server);
    const client = clientOf(port, 400);
    const started = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => client.server().getSlotList()));
    expect(Date.now() - started).toBeLessThan(3000);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect(((o as PromiseRejectedResult).reason as LinkError).code).toBe('NTLS_ERR_TIMEOUT');
    }
    await client.close();
  });

  it('a server that answers each call within the timeout never times out, however long the queue', async () => {
    const { server, port } = await fakeServer(150);
    servers.push(server);
    // A timeout well above the 150 ms between answers: the fake server's timers share this
    // process's event loop, and a stall of a busy machine delays them as much as the client's.
    const client = clientOf(port, 1000);
    // Ten calls at 150 ms each take longer than the timeout in all, but answers keep coming.
    const started = Date.now();
    const slots = await Promise.all(Array.from({ length: 10 }, () => client.server().getSlotList()));
    expect(Date.now() - started).toBeGreaterThan(1000);
    expect(slots).toEqual(Array.from({ length: 10 }, () => [0]));
    await client.close();
  });
});
