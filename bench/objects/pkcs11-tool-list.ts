// `pkcs11-tool -O` (list every object with its attributes, logged in) through bookworm's
// p11-kit-client.so, `ntls-client p11-relay --listen` and a real daemon, over a partition
// holding `count` token objects (created over the wire beforehand). pkcs11-tool asks for one
// handle per C_FindObjects and then reads each object's attributes in several
// C_GetAttributeValue calls: every call is a round trip through the relay.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { CKA, CKK, CKO } from '../../src/pkcs11/constants.js';
import { attr, request } from '../../src/protocol/p11kit/index.js';
import { NtlsDaemon, NTLS_USER_PIN } from '../network/ntls-daemon.js';
import { processTreesCpu, treeCpuBetween } from '../network/measure.js';
import { ok } from '../network/rpc-channel.js';
import { initialize, openUserSession } from '../network/token.js';
import { P11KIT_CLIENT, RelayProcess } from '../stock/relay-process.js';
import { labelOf, idOf } from './populate.js';

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');

interface ListingRun {
  listed: number; seconds: number;
  /** CPU seconds over the listing: the daemon (with its child processes), the relay. */
  daemonCpuSeconds: number; relayCpuSeconds: number;
}

export interface ListingFigure extends ListingRun {
  objects: number;
  command: string;
  /** The same listing in the same run through `p11-relay --no-read-ahead`, and its seconds ÷ ours. */
  withoutReadAhead: ListingRun; ratio: number;
}

const LIST_ARGS = ['--module', P11KIT_CLIENT, '--login', '--pin', 'PIN', '-O'];

async function listOnce(daemonPid: number, relay: RelayProcess, count: number, how: string): Promise<ListingRun> {
  const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${relay.socketPath}` };
  const args = LIST_ARGS.map((a) => (a === 'PIN' ? NTLS_USER_PIN : a));
  await runTool(['--module', P11KIT_CLIENT, '-L'], env, 30_000); // warm-up: the relay's link and code
  const [daemonBefore, relayBefore] = processTreesCpu([daemonPid, relay.pid]);
  const start = performance.now();
  const out = await runTool(args, env, 600_000);
  const seconds = (performance.now() - start) / 1000;
  const [daemonAfter, relayAfter] = processTreesCpu([daemonPid, relay.pid]);
  const daemonCpuSeconds = treeCpuBetween(daemonBefore!, daemonAfter!);
  const relayCpuSeconds = treeCpuBetween(relayBefore!, relayAfter!);
  const listed = out.split('\n').filter((line) => /^(Public Key Object|Private Key Object|Data object|Secret Key Object|Certificate Object)/.test(line)).length;
  process.stderr.write(`pkcs11-tool -O listed ${listed} of ${count} objects through the relay${how} in ${seconds.toFixed(2)} s (daemon CPU ${daemonCpuSeconds.toFixed(2)} s, relay ${relayCpuSeconds.toFixed(2)} s)\n`);
  return {
    listed, seconds: Math.round(seconds * 1000) / 1000,
    daemonCpuSeconds: Math.round(daemonCpuSeconds * 100) / 100, relayCpuSeconds: Math.round(relayCpuSeconds * 100) / 100,
  };
}

function runTool(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const wrap = (process.env.BENCH_TOOL_WRAP ?? '').split(' ').filter(Boolean);
    const child = spawn(wrap[0] ?? 'pkcs11-tool', [...wrap.slice(1), ...(wrap.length ? ['pkcs11-tool'] : []), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      if (process.env.BENCH_TOOL_WRAP) process.stderr.write(err.slice(-3000));
      if (status === 0) resolve(out);
      else reject(new Error(`pkcs11-tool exited ${status}: ${err.trim()}`));
    });
  });
}

export async function listThroughRelay(count: number): Promise<ListingFigure> {
  const points = ecPoints();
  const daemon = await NtlsDaemon.start();
  let relay: RelayProcess | undefined;
  try {
    const channel = await daemon.connect();
    const slot = await initialize(channel);
    const session = await openUserSession(channel, slot, NTLS_USER_PIN);
    // Public key objects with label and id, and every fifth a data object: what a listing shows.
    for (let i = 0; i < count; i++) {
      const template = i % 5 === 4
        ? [attr.ulong(CKA.CLASS, CKO.DATA), attr.bool(CKA.TOKEN, true), attr.bytes(CKA.LABEL, labelOf(i)), attr.bytes(CKA.VALUE, Buffer.alloc(32, i & 0xff))]
        : [attr.ulong(CKA.CLASS, CKO.PUBLIC_KEY), attr.ulong(CKA.KEY_TYPE, CKK.EC), attr.bool(CKA.TOKEN, true), attr.bytes(CKA.LABEL, labelOf(i)),
            attr.bytes(CKA.ID, idOf(i)), attr.bytes(CKA.EC_PARAMS, P256_OID), attr.bytes(CKA.EC_POINT, points[i % points.length]!), attr.bool(CKA.VERIFY, true)];
      await ok(channel, request('C_CreateObject', { session, template }));
    }
    await channel.close();
    const timed = async (relayArgs: string[]): Promise<ListingRun> => {
      relay = await RelayProcess.start(daemon, 15_000, relayArgs);
      try {
        return await listOnce(daemon.pid, relay, count, relayArgs.length ? ` ${relayArgs.join(' ')}` : '');
      } finally {
        await relay.stop();
        relay = undefined;
      }
    };
    // The reference first, in the same run: the relay sending every call to the daemon.
    const reference = await timed(['--no-read-ahead']);
    const run = await timed([]);
    return {
      objects: count, ...run, command: `pkcs11-tool ${LIST_ARGS.join(' ')}`,
      withoutReadAhead: reference, ratio: Math.round((reference.seconds / run.seconds) * 100) / 100,
    };
  } finally {
    await relay?.stop();
    await daemon.stop();
  }
}

/** A few real P-256 public points as CKA_EC_POINT (a DER OCTET STRING of 0x04 || X || Y). */
function ecPoints(): Buffer[] {
  return Array.from({ length: 4 }, () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    return Buffer.concat([Buffer.from([0x04, point.length]), point]);
  });
}
