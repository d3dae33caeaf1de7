// A link ends when its client certificate's validity ends. It was checked at the handshake only:
// the attacker's probe kept a link made 27 s before notAfter working 15 s after it.
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon, keepaliveBody, linkWhenRegistered, makeClient, makeHome, registerClient, removeHome, sleep, startDaemon } from '../support/daemon.js';

let daemon: Daemon | null = null;
const home = makeHome({ datapath: { receiveTimeout: 0 } });
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('a client certificate that expires while its link is open', () => {
  it('ends the link at notAfter: "Client credentials cannot be verified. Connection terminated", then "Connection terminating"', async () => {
    daemon = await startDaemon(home);
    // X.509 times are whole seconds: the certificate ends 4 to 5 s from now.
    const notAfter = new Date(Math.ceil(Date.now() / 1000) * 1000 + 4000);
    const client = await makeClient('short-lived', { notBefore: new Date(Date.now() - 60_000), notAfter });
    registerClient(home, client);
    const l = await linkWhenRegistered(daemon, client);
    const port = l.socket.localPort!;
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    const from = daemon.log().length;
    const closed = new Promise<number>((resolve) => l.socket.once('close', () => resolve(Date.now())));
    const endedAt = await Promise.race([closed, sleep(15_000).then(() => -1)]);
    expect(endedAt, 'the link outlived its certificate').toBeGreaterThan(0);
    expect(endedAt).toBeGreaterThanOrEqual(notAfter.getTime());
    const lines = daemon.bodies().slice(from);
    const rejected = lines.findIndex((b) => b.endsWith(`Client credentials cannot be verified. Connection terminated : 127.0.0.1/${port}`));
    expect(rejected, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(lines.findIndex((b) => b.includes(`Connection terminating:  127.0.0.1/${port}`) || b.includes(`Connection terminating: 127.0.0.1/${port}`))).toBeGreaterThan(rejected);
  }, 30_000);
});
