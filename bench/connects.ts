// Full mutual-TLS connects per second to ntls: TCP connect, TLS 1.3 handshake with client
// certificate, identity exchange, protocol version byte, one call (C_Initialize), close; from
// several loops at once. The daemon's CPU per connect is its process tree's CPU over the window
// divided by the connects made. Beside it, in the same run and with the same certificates:
//   - bare Node.js: a TLS server process (bench/connects/tls-echo-server.ts) that requires the
//     client certificate and answers one byte; the client connects, sends a byte, reads one,
//     closes, from the same number of loops;
//   - OpenSSL: `openssl s_time -new` against `openssl s_server -Verify 1` (one s_time per loop).
// The client loops, the servers and the rest of the machine share the cores: the figures are
// of this machine as it was (a busy 2-core machine when committed).
//
//   npm run bench:connects   (BENCH_SECONDS per measurement, BENCH_LOOPS=4,16)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { openLink } from '../src/client/link.js';
import { P11KIT_HANDSHAKE, request } from '../src/protocol/p11kit/index.js';
import { machineCpu, processTreesCpu, sleep, treeCpuBetween, writeRecord } from './network/measure.js';
import { NtlsDaemon } from './network/ntls-daemon.js';
import { encoded } from './network/rpc-channel.js';
import { freePort } from './stock/stunnel.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const LOOPS = (process.env.BENCH_LOOPS ?? '4,16').split(',').map(Number);
const resultsFile = process.env.BENCH_OUT ?? fileURLToPath(new URL('../../bench/results/connects.json', import.meta.url));
const echoServer = fileURLToPath(new URL('./connects/tls-echo-server.js', import.meta.url));

interface Figure {
  loops: number;
  connectsPerSecond: number;
  /** Server CPU (its process tree) per connect, ms; null for s_server, whose CPU is counted too. */
  serverCpuMsPerConnect: number | null;
  /** Cores busy on the whole machine during the window. */
  machineCores: number;
  failures: number;
}

/** Runs `loops` loops of `once` for SECONDS, counting completions and the server tree's CPU. */
async function drive(loops: number, once: () => Promise<void>, serverPid: number | null): Promise<Figure> {
  let stop = false;
  let count = 0;
  let failures = 0;
  const m0 = machineCpu();
  const s0 = serverPid === null ? null : processTreesCpu([serverPid])[0]!;
  const start = performance.now();
  setTimeout(() => { stop = true; }, SECONDS * 1000);
  await Promise.all(Array.from({ length: loops }, async () => {
    while (!stop) {
      try {
        await once();
        count++;
      } catch {
        failures++;
        if (failures > 1000) stop = true;
      }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const m1 = machineCpu();
  const s1 = serverPid === null ? null : processTreesCpu([serverPid])[0]!;
  const cpu = s0 && s1 ? treeCpuBetween(s0, s1) : null;
  return {
    loops, connectsPerSecond: Math.round(count / seconds), failures,
    serverCpuMsPerConnect: cpu === null || count === 0 ? null : Number(((cpu * 1000) / count).toFixed(3)),
    machineCores: Number((((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * availableParallelism()).toFixed(2)),
  };
}

function startProcess(command: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} did not start: ${output}`)); }, 15_000);
    const look = (d: Buffer) => {
      output += d.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (status) => { clearTimeout(timer); reject(new Error(`${command} exited ${status}: ${output}`)); });
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** `openssl s_time -new` from `loops` processes at once: their connections per second summed. */
async function sTime(loops: number, port: number, files: { clientCert: string; clientKey: string; serverCert: string }, serverPid: number): Promise<Figure> {
  const m0 = machineCpu();
  const s0 = processTreesCpu([serverPid])[0]!;
  const runs = await Promise.all(Array.from({ length: loops }, () => new Promise<number>((resolve) => {
    const child = spawn('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(SECONDS),
      '-cert', files.clientCert, '-key', files.clientKey, '-CAfile', files.serverCert], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => {
      const match = /(\d+) connections in ([\d.]+) real seconds/.exec(out) ?? /(\d+) connections in (\d+) real seconds/.exec(out);
      resolve(match ? Number(match[1]) / Number(match[2]) : 0);
    });
  })));
  const m1 = machineCpu();
  const s1 = processTreesCpu([serverPid])[0]!;
  const rate = runs.reduce((a, b) => a + b, 0);
  const cpu = treeCpuBetween(s0, s1);
  return {
    loops, connectsPerSecond: Math.round(rate), failures: 0,
    serverCpuMsPerConnect: rate === 0 ? null : Number(((cpu * 1000) / (rate * SECONDS)).toFixed(3)),
    machineCores: Number((((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * availableParallelism()).toFixed(2)),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); ${SECONDS} s per measurement, loops ${LOOPS.join(', ')}`);
  const ntls = await NtlsDaemon.start();
  const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-connects-'));
  let echo: ChildProcess | undefined;
  let sServer: ChildProcess | undefined;
  try {
    const relayArgs = ntls.relayCommand(dir); // writes the bench client's certificate and key into dir
    const clientCert = relayArgs[relayArgs.indexOf('--cert') + 1]!;
    const clientKey = relayArgs[relayArgs.indexOf('--key') + 1]!;
    const serverCert = join(ntls.home, 'server', 'server.pem');
    const serverKey = join(ntls.home, 'server', 'server.key');
    const clientCertPem = readFileSync(clientCert, 'utf8');
    const clientKeyPem = readFileSync(clientKey, 'utf8');
    const serverCertPem = readFileSync(serverCert, 'utf8');
    const init = encoded(request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));

    const ntlsOnce = async () => {
      const link = await openLink({ host: '127.0.0.1', port: ntls.port, clientName: 'bench-client', certificatePem: clientCertPem, keyPem: clientKeyPem, serverCertificatePem: serverCertPem, timeoutMs: 15_000 });
      try {
        await link.request(init);
      } finally {
        await link.close();
      }
    };

    const echoStarted = await startProcess(process.execPath, [echoServer, serverCert, serverKey, clientCert], /^(\d+)\n/m);
    echo = echoStarted.child;
    const echoPort = Number(echoStarted.match[1]);
    const one = Buffer.from([0]);
    const nodeOnce = () => new Promise<void>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: echoPort, cert: clientCertPem, key: clientKeyPem, ca: serverCertPem, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' }, () => {
        socket.setNoDelay(true);
        socket.write(one);
      });
      socket.once('data', () => { socket.end(); resolve(); });
      socket.once('error', reject);
    });

    const sPort = await freePort();
    const sStarted = await startProcess('openssl', ['s_server', '-accept', String(sPort), '-cert', serverCert, '-key', serverKey,
      '-Verify', '1', '-CAfile', clientCert, '-tls1_3'], /ACCEPT/).catch(() => null);
    sServer = sStarted?.child;
    await sleep(300);

    const rows: Array<{ loops: number; ntls: Figure; node: Figure; openssl: Figure | null }> = [];
    for (const loops of LOOPS) {
      process.stdout.write(`  ${loops} loops ...`);
      // Each takes its turn right after the other, so load from elsewhere lands on all alike.
      await drive(loops, ntlsOnce, null); // warm-up of this process's code and the daemon's
      const ntlsFigure = await drive(loops, ntlsOnce, ntls.pid);
      const nodeFigure = await drive(loops, nodeOnce, echo.pid!);
      const opensslFigure = sServer ? await sTime(loops, sPort, { clientCert, clientKey, serverCert }, sServer.pid!) : null;
      rows.push({ loops, ntls: ntlsFigure, node: nodeFigure, openssl: opensslFigure });
      console.log(` ntls ${ntlsFigure.connectsPerSecond}/s (${ntlsFigure.serverCpuMsPerConnect} ms CPU each), node TLS ${nodeFigure.connectsPerSecond}/s (${nodeFigure.serverCpuMsPerConnect} ms), openssl ${opensslFigure?.connectsPerSecond ?? '-'}/s (${opensslFigure?.serverCpuMsPerConnect ?? '-'} ms)`);
    }
    writeRecord(resultsFile, {
      bench: 'connects', command: 'npm run bench:connects', date: new Date().toISOString(), node: process.version,
      machine: `${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'})`, secondsPerMeasurement: SECONDS,
      what: {
        ntls: 'openLink (TCP, TLS 1.3 with client certificate, identity exchange, version byte) + C_Initialize + close, from this process',
        node: 'node:tls server process with the daemon\'s certificate and key, client certificate required; connect, 1 byte each way, close',
        openssl: 'openssl s_time -new (one process per loop) against openssl s_server -Verify 1 -tls1_3, same certificates',
        serverCpuMsPerConnect: 'CPU of the server\'s process tree over the window / connects made',
      },
      note: 'one run on a 2-core machine whose cores the bench\'s client loops share with the server measured; compare the columns, which ran one right after the other',
      rows,
    });
    console.log(`written ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    if (echo) await stopProcess(echo);
    if (sServer) await stopProcess(sServer);
    await ntls.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
