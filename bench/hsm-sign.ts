// In-process sign throughput of the software HSM's mechanisms (RSA-2048 SHA256_RSA_PKCS,
// P-256 ECDSA_SHA256, Ed25519 EDDSA), printed beside `openssl speed` measured in the same run
// on the same machine. Each openssl figure is taken right before ours, so a shared machine's
// changing load skews both alike. Ours runs one operation at a time (one core, as openssl
// speed does), then two at a time for reference; the raw mechanisms stock PKCS#11
// applications use (CKM_RSA_PKCS over a DigestInfo, CKM_ECDSA over a hash) follow.
//
//   npm run bench:hsm

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { CKM } from '../src/pkcs11/constants.js';
import type { KeyMaterial } from '../src/hsm/mechanisms/contract.js';
import { softwareMechanisms as mechanisms } from '../src/hsm/mechanisms/index.js';
import { P256 } from '../src/hsm/mechanisms/curves.js';

const SECONDS = 3;
const SHORT_SECONDS = 1.5;
const message = Buffer.alloc(32, 0x61);

async function signOnce(type: number, key: KeyMaterial, data: Buffer): Promise<void> {
  const operation = mechanisms.sign({ type, parameter: null }, key);
  await operation.update(data);
  await operation.final();
}

/** Operations per second with `inFlight` signatures outstanding at a time. */
async function measure(type: number, key: KeyMaterial, data: Buffer, seconds: number, inFlight = 1): Promise<number> {
  for (let i = 0; i < 20; i++) await signOnce(type, key, data); // warm-up: key parse, worker start
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  const start = performance.now();
  const lane = async () => {
    while (performance.now() < deadline) {
      await signOnce(type, key, data);
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return count / ((performance.now() - start) / 1000);
}

/** `openssl speed -seconds N <algorithm>`: its sign/s column. */
function opensslSignsPerSecond(algorithm: string, line: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('openssl', ['speed', '-seconds', String(SECONDS), algorithm], { maxBuffer: 1 << 20 }, (error, stdout) => {
      const match = error ? null : line.exec(stdout);
      if (match) resolve(Number(match[1]));
      else reject(error ?? new Error(`openssl speed ${algorithm}: no line matching ${line}`));
    });
  });
}

const format = (value: number) => value.toFixed(0).padStart(9);

async function main(): Promise<void> {
  const [rsa, ec, ed] = await Promise.all([
    mechanisms.generateKeyPair({ type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null }, { modulusBits: 2048 }),
    mechanisms.generateKeyPair({ type: CKM.EC_KEY_PAIR_GEN, parameter: null }, { ecParams: P256.params }),
    mechanisms.generateKeyPair({ type: CKM.EC_EDWARDS_KEY_PAIR_GEN, parameter: null }, { ecParams: Buffer.from('130c656477617264733235353139', 'hex') }),
  ]);
  const hash = createHash('sha256').update(message).digest();
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), hash]);

  console.log(`node ${process.version}, ${availableParallelism()} CPUs; ${SECONDS} s per measurement`);
  const cases = [
    ['RSA-2048 SHA256_RSA_PKCS', CKM.SHA256_RSA_PKCS, rsa.privateKey, message, 'rsa2048', /rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)/],
    ['P-256 ECDSA_SHA256', CKM.ECDSA_SHA256, ec.privateKey, message, 'ecdsap256', /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)/],
    ['Ed25519 EDDSA', CKM.EDDSA, ed.privateKey, message, 'ed25519', /253 bits EdDSA \(Ed25519\)\s+\S+\s+\S+\s+([\d.]+)/],
  ] as const;
  const rows: Array<[string, number, number, number | null]> = [];
  const reference = new Map<string, number>();
  for (const [name, type, key, data, algorithm, line] of cases) {
    console.log(`  ${name}: openssl speed ${algorithm}, then ours`);
    const ref = await opensslSignsPerSecond(algorithm, line);
    reference.set(algorithm, ref);
    const single = await measure(type, key, data, SECONDS);
    const pair = await measure(type, key, data, SHORT_SECONDS, 2);
    rows.push([name, single, ref, pair]);
  }
  rows.push(['RSA-2048 RSA_PKCS (DigestInfo)', await measure(CKM.RSA_PKCS, rsa.privateKey, digestInfo, SHORT_SECONDS), reference.get('rsa2048')!, null]);
  rows.push(['P-256 ECDSA (prehashed)', await measure(CKM.ECDSA, ec.privateKey, hash, SHORT_SECONDS), reference.get('ecdsap256')!, null]);

  console.log('');
  console.log(`${'sign/s'.padStart(42)}${'openssl'.padStart(10)}${'ratio'.padStart(8)}${'2 in flight'.padStart(13)}`);
  for (const [name, ours, ref, pair] of rows) {
    console.log(`${name.padEnd(32)}${format(ours)} ${format(ref)}${(ours / ref).toFixed(2).padStart(8)}${pair ? format(pair).padStart(13) : ''}`);
  }
  console.log('\nratio = ours, one at a time / openssl speed (single core)');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
