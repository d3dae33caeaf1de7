import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyTcpKeepalive, readTcpKeepalive } from '../../src/datapath/tcp-keepalive.js';

// A real loopback connection: the accepted socket is what the daemon configures.
describe.runIf(process.platform === 'linux')('TCP keepalive probes', () => {
  let server: Server;
  let client: Socket;
  let accepted: Socket;

  beforeEach(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const acceptedP = once(server, 'connection');
    client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    [accepted] = (await acceptedP) as [Socket];
  });

  afterEach(async () => {
    client.destroy();
    accepted.destroy();
    server.close();
    await once(server, 'close');
  });

  it('sets TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT, read back with getsockopt', () => {
    applyTcpKeepalive(accepted, { idle: 17, interval: 9, count: 4 });
    expect(readTcpKeepalive(accepted)).toEqual({ enabled: true, idle: 17, interval: 9, count: 4 });
  });

  it('configures each socket on its own', () => {
    applyTcpKeepalive(accepted, { idle: 30, interval: 5, count: 3 });
    applyTcpKeepalive(client, { idle: 60, interval: 20, count: 7 });
    expect(readTcpKeepalive(accepted)).toMatchObject({ idle: 30, interval: 5, count: 3 });
    expect(readTcpKeepalive(client)).toMatchObject({ idle: 60, interval: 20, count: 7 });
  });

  it('reaches the TCP socket under a TLS socket', () => {
    const tls = new TLSSocket(accepted);
    try {
      applyTcpKeepalive(tls, { idle: 11, interval: 3, count: 2 });
      expect(readTcpKeepalive(accepted)).toMatchObject({ enabled: true, idle: 11, interval: 3, count: 2 });
    } finally {
      tls.destroy();
    }
  });

  it('wins over Node\'s own setKeepAlive when applied after it', () => {
    // libuv's keepalive sets its own TCP_KEEPINTVL / TCP_KEEPCNT: the order matters.
    accepted.setKeepAlive(true, 5000);
    applyTcpKeepalive(accepted, { idle: 10, interval: 10, count: 2 });
    expect(readTcpKeepalive(accepted)).toEqual({ enabled: true, idle: 10, interval: 10, count: 2 });
  });

  it('leaves keepalive off until applied', () => {
    expect(readTcpKeepalive(accepted).enabled).toBe(false);
  });

  it('refuses values the kernel would not take, with a stable code', () => {
    expect(() => applyTcpKeepalive(accepted, { idle: 0, interval: 10, count: 2 })).toThrow(
      expect.objectContaining({ code: 'NTLS_ERR_TCP_KEEPALIVE' }),
    );
    expect(() => applyTcpKeepalive(accepted, { idle: 10, interval: 10, count: 128 })).toThrow(
      expect.objectContaining({ code: 'NTLS_ERR_TCP_KEEPALIVE' }),
    );
    expect(() => applyTcpKeepalive(accepted, { idle: 10, interval: 1.5, count: 2 })).toThrow(
      expect.objectContaining({ code: 'NTLS_ERR_TCP_KEEPALIVE' }),
    );
  });

  it('refuses a closed socket with a stable code', async () => {
    client.destroy();
    await once(client, 'close');
    expect(() => applyTcpKeepalive(client, { idle: 10, interval: 10, count: 2 })).toThrow(
      expect.objectContaining({ code: 'NTLS_ERR_TCP_KEEPALIVE' }),
    );
  });
});
