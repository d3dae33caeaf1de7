// CPU per signature in the command processor, without sockets or TLS: C_SignInit + C_Sign
// frames through the processor harness (test/support/processor-harness.ts: the processor the
// daemon loads, driven as the datapath drives it), beside the same signature made by the
// software HSM's mechanism directly (what the signature itself costs). One request pair at a
// time on one connection, CPU time of this process over the window (process.cpuUsage).
// The ratio processor / signature is what the daemon's request path adds (the goal:
// at most 2×, TLS and sockets apart).
//
//   npm run bench:processor   (BENCH_OUT=FILE writes the JSON; BENCH_SIGNATURES=N per case)
//   node --cpu-prof --cpu-prof-dir=DIR dist/bench/processor-sign.js   to see where it goes
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { CKF, CKM, CKU } from '../src/pkcs11/constants.js';
import { softwareMechanisms } from '../src/hsm/mechanisms/index.js';
import { P256 } from '../src/hsm/mechanisms/curves.js';
import type { KeyMaterial } from '../src/hsm/mechanisms/contract.js';
import { request } from '../src/protocol/p11kit/index.js';
import { ProcessorHarness } from '../test/support/processor-harness.js';
import { ok, type RpcChannel } from './network/rpc-channel.js';
import { generateKeys, initialize, prepareConnection, signLane, type KeyName } from './network/token.js';

const SIGNATURES = Number(process.env.BENCH_SIGNATURES ?? 3000);
const SO_PIN = 'bench-so-pin';
const USER_PIN = 'bench-user-pin';
const message = Buffer.alloc(32, 0x61);
const digest = createHash('sha256').update(message).digest();

interface Case { name: string; key: KeyName; mechanism: number; data: Buffer; signatureBytes: number }

const CASES: Case[] = [
  { name: 'P-256 CKM_ECDSA_SHA256', key: 'p-256', mechanism: CKM.ECDSA_SHA256, data: message, signatureBytes: 64 },
  { name: 'P-256 CKM_ECDSA (digest)', key: 'p-256', mechanism: CKM.ECDSA, data: digest, signatureBytes: 64 },
  { name: 'Ed25519 CKM_EDDSA', key: 'ed25519', mechanism: CKM.EDDSA, data: message, signatureBytes: 64 },
  { name: 'RSA-2048 CKM_SHA256_RSA_PKCS', key: 'rsa-2048', mechanism: CKM.SHA256_RSA_PKCS, data: message, signatureBytes: 256 },
];

/** CPU microseconds per call of `once`, over `count` sequential calls after a warm-up. */
async function cpuPerCall(once: () => Promise<unknown>, count: number): Promise<{ cpuUs: number; wallUs: number }> {
  for (let i = 0; i < Math.min(200, count); i++) await once();
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < count; i++) await once();
  const used = process.cpuUsage(cpu);
  return { cpuUs: (used.user + used.system) / count, wallUs: ((performance.now() - start) * 1000) / count };
}

async function bareKeys(): Promise<Record<KeyName, KeyMaterial>> {
  const generate = (type: number, request: Parameters<typeof softwareMechanisms.generateKeyPair>[1]) => softwareMechanisms.generateKeyPair({ type, parameter: null }, request);
  const [rsa, ec, ed] = await Promise.all([
    generate(CKM.RSA_PKCS_KEY_PAIR_GEN, { modulusBits: 2048 }),
    generate(CKM.EC_KEY_PAIR_GEN, { ecParams: P256.params }),
    generate(CKM.EC_EDWARDS_KEY_PAIR_GEN, { ecParams: Buffer.from('130c656477617264733235353139', 'hex') }),
  ]);
  return { 'rsa-2048': rsa.privateKey, 'p-256': ec.privateKey, 'ed25519': ed.privateKey };
}

async function main(): Promise<void> {
  const harness = await ProcessorHarness.start({ config: { hsm: { kdfCost: 1024, pinMinLength: 4 }, log: { debug: false } } });
  try {
    harness.register('bench');
    await harness.createPartition('bench', SO_PIN);
    await harness.assign('bench', 'bench');
    const connect = async (): Promise<RpcChannel> => {
      const link = await harness.connect('bench');
      return { send: (body) => link.request(body).then((frame) => frame.body), close: () => link.close() };
    };
    const setup = await connect();
    const slot = await initialize(setup);
    const { session } = await ok(setup, request('C_OpenSession', { slotId: slot, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
    await ok(setup, request('C_Login', { session, userType: CKU.SO, pin: Buffer.from(SO_PIN) }));
    await ok(setup, request('C_InitPIN', { session, pin: Buffer.from(USER_PIN) }));
    await ok(setup, request('C_Logout', { session }));
    await generateKeys(setup, USER_PIN);
    const connection = await prepareConnection(await connect(), USER_PIN);
    const keys = await bareKeys();

    const rows = [];
    // The first case also pays for warming the request path up: it runs twice, the first time unrecorded.
    for (const [i, c] of [CASES[0]!, ...CASES].entries()) {
      const count = c.key === 'rsa-2048' ? Math.ceil(SIGNATURES / 6) : SIGNATURES;
      const lane = signLane(connection, { what: c.name, key: c.key, mechanism: c.mechanism, data: c.data, signatureBytes: c.signatureBytes });
      const bare = async () => {
        const operation = softwareMechanisms.sign({ type: c.mechanism, parameter: null }, keys[c.key]);
        await operation.update(c.data);
        return operation.final();
      };
      const signature = await cpuPerCall(bare, count);
      const processor = await cpuPerCall(lane, count);
      const row = {
        case: c.name, signatures: count,
        signatureCpuUs: Math.round(signature.cpuUs), processorCpuUs: Math.round(processor.cpuUs),
        ratio: Math.round((processor.cpuUs / signature.cpuUs) * 100) / 100,
        signatureWallUs: Math.round(signature.wallUs), processorWallUs: Math.round(processor.wallUs),
      };
      if (i === 0) continue;
      rows.push(row);
      process.stderr.write(`${c.name.padEnd(32)} signature ${String(row.signatureCpuUs).padStart(6)} µs CPU   processor ${String(row.processorCpuUs).padStart(6)} µs CPU   ${row.ratio.toFixed(2)}×\n`);
    }
    const result = {
      command: 'npm run bench:processor', date: new Date().toISOString(), node: process.version,
      note: 'CPU time of one process (harness and processor together; the libuv thread pool counts, for hash-then-sign on it): per C_SignInit + C_Sign pair vs the mechanism alone. The machine is shared with other work.',
      rows,
    };
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await harness.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
