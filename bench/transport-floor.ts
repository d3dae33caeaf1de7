// The round trip under every network signature: how long one request and its answer take with
// nothing to do, measured in one run on this machine, one request in flight:
//   - a bare Node.js TLS echo server in another process (the floor of any Node.js TLS service);
//   - ntls: the NTLS keepalive and C_GetInfo over the mutual-TLS link (datapath + processor);
//   - p11-kit server + SoftHSM2: C_GetInfo over its unix socket (C, no TLS);
//   - p11-kit server + SoftHSM2: a whole P-256 signature (C_SignInit + C_Sign, pipelined).
// It says what the 1-connection cells of bench:network can reach at best.
//
//   npm run bench:floor         (BENCH_ROUND_TRIPS, default 3000)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:tls';
import { createSelfSignedCertificate } from '../src/certificates/self-signed.js';
import { CKM } from '../src/pkcs11/constants.js';
import { encodeRequest, request } from '../src/protocol/p11kit/index.js';
import { NtlsDaemon } from './network/ntls-daemon.js';
import type { RpcChannel } from './network/rpc-channel.js';
import { SoftHsmServer, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { readyServer, signLane } from './network/token.js';

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 3000);
const WARMUP = 300;

/** Mean microseconds of `once()` done one after the other. */
async function roundTrip(once: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await once();
  const started = process.hrtime.bigint();
  for (let i = 0; i < ROUND_TRIPS; i++) await once();
  return Number(process.hrtime.bigint() - started) / ROUND_TRIPS / 1000;
}

/** A TLS echo server in a process of its own (node -e), and a round trip of 64 bytes to it. */
async function bareTlsEcho(): Promise<number> {
  const { certificatePem, keyPem } = await createSelfSignedCertificate({ commonName: 'echo', keyType: 'ecdsa-p256', usage: 'server', dnsNames: ['echo'] });
  const script = `
    const tls = require('node:tls');
    const server = tls.createServer({ key: process.env.KEY, cert: process.env.CERT }, (c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, KEY: keyPem, CERT: certificatePem }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const socket = connect({ host: '127.0.0.1', port: Number(line.toString().trim()), rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    socket.setNoDelay(true);
    const message = Buffer.alloc(64, 1);
    const micros = await roundTrip(() => new Promise((resolve) => { socket.once('data', resolve); socket.write(message); }));
    socket.destroy();
    return micros;
  } finally {
    child.kill();
  }
}

function body(made: ReturnType<typeof encodeRequest>): Buffer {
  if (!made.ok) throw made.error;
  return made.value;
}

async function main(): Promise<void> {
  const getInfo = body(encodeRequest(request('C_GetInfo', {}), { version: 0 }));
  const keepalive = Buffer.alloc(8);
  keepalive.writeUInt32BE(0x4e540001, 0);

  const echo = await bareTlsEcho();
  const daemon = await NtlsDaemon.start();
  const soft = await SoftHsmServer.start();
  try {
    const ntls = await daemon.connect();
    const ntlsKeepalive = await roundTrip(() => ntls.send(keepalive));
    const ntlsGetInfo = await roundTrip(() => ntls.send(getInfo));
    const { connections: [signer] } = await readyServer(() => soft.connect(), SOFTHSM_USER_PIN, 1, 1);
    const p11kit: RpcChannel = signer!.channel;
    const p11kitGetInfo = await roundTrip(() => p11kit.send(getInfo));
    const p11kitSign = await roundTrip(signLane(signer!, { what: 'P-256 CKM_ECDSA', key: 'p-256', mechanism: CKM.ECDSA, data: Buffer.alloc(32, 7), signatureBytes: 64 }));
    const rows: Array<[string, number]> = [
      ['bare Node.js TLS echo, another process', echo],
      ['ntls NTLS keepalive (mutual TLS)', ntlsKeepalive],
      ['ntls C_GetInfo (mutual TLS)', ntlsGetInfo],
      ['p11-kit server C_GetInfo (unix socket)', p11kitGetInfo],
      ['p11-kit server + SoftHSM2 P-256 signature', p11kitSign],
    ];
    console.log(`round trip, one in flight (${ROUND_TRIPS} each)        µs`);
    for (const [name, micros] of rows) console.log(`${name.padEnd(46)}${micros.toFixed(1).padStart(8)}`);
    console.log(`\nbare TLS echo ÷ p11-kit's whole signature: ${(echo / p11kitSign).toFixed(2)}`);
  } finally {
    await daemon.stop();
    await soft.stop();
  }
}

await main();
