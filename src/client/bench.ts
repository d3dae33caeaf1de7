// `ntls-client bench`: signing throughput and latency against a server, as the appliance
// vendors' multitoken tools measure it. For each connection count in turn, that many links
// (each its own mutual-TLS connection, session and login) sign in a loop (C_SignInit + C_Sign
// per signature) for a time or a count; the result per count is signatures per second and
// latency percentiles. The key is found by label, or generated for the run (a token key pair
// or secret key, destroyed at the end).
import { randomBytes } from 'node:crypto';
import { CKM, CKO, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { ClientError } from './errors.js';
import { defaultSignMechanism, type KeyType } from './key-specs.js';
import type { NtlsClient } from './ntls-client.js';
import type { TokenSession } from './token-session.js';

export interface BenchOptions {
  /** Makes one client per connection (each holds its own link). */
  client: () => NtlsClient;
  slot: number;
  pin: string;
  /** Key type of a key generated for the run (when `label` is not given). */
  keyType: KeyType;
  /** An existing key (its private or secret key) to sign with instead. */
  label?: string;
  /** Default: the key's own (ecdsa-sha256 for P-256, sha256-rsa-pkcs for RSA ...). */
  mechanism?: Mechanism;
  connections: readonly number[];
  /** Length of each measurement, unless `count` is given. */
  seconds: number;
  /** Signatures per connection count (shared by its connections), instead of `seconds`. */
  count?: number;
  /** Bytes signed each time (default 32: a SHA-256 digest, what raw CKM_ECDSA takes). */
  dataBytes?: number;
  /** Told of progress: the connection count being measured, signatures done, elapsed seconds. */
  onProgress?: (progress: BenchProgress) => void;
}

export interface BenchProgress { connections: number; done: number; seconds: number; target: string }

export interface BenchRow {
  connections: number;
  signatures: number;
  seconds: number;
  opsPerSecond: number;
  /** Latency of one signature (C_SignInit + C_Sign), milliseconds. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  errors: number;
}

export interface BenchResult {
  server: string;
  slot: number;
  keyType: KeyType | null;
  label: string;
  mechanism: string;
  dataBytes: number;
  rows: BenchRow[];
}

interface Lane { client: NtlsClient; token: TokenSession; key: number }

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

function mechanismName(type: number): string {
  for (const [name, value] of Object.entries(CKM)) if (value === type) return `CKM_${name}`;
  return `0x${type.toString(16)}`;
}

async function openLane(options: BenchOptions, label: string): Promise<Lane> {
  const client = options.client();
  try {
    const token = await client.openToken({ slot: options.slot, pin: options.pin });
    const key = await token.findKey(label, [CKO.PRIVATE_KEY, CKO.SECRET_KEY]);
    return { client, token, key };
  } catch (error) {
    await client.close();
    throw error;
  }
}

async function closeLane(lane: Lane): Promise<void> {
  await lane.token.close().catch(() => undefined);
  await lane.client.close();
}

async function measure(options: BenchOptions, lanes: Lane[], mechanism: Mechanism, data: Buffer): Promise<BenchRow> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: Error | undefined;
  const start = performance.now();
  const deadline = start + options.seconds * 1000;
  const target = options.count !== undefined ? `${options.count} signatures` : `${options.seconds} s`;
  let started = 0;
  // With a count, a signature is claimed before it is sent, so the lanes together make exactly that many.
  const more = () => (options.count !== undefined ? started++ < options.count : performance.now() < deadline);
  const progress = options.onProgress
    ? setInterval(() => options.onProgress!({ connections: lanes.length, done: latencies.length, seconds: (performance.now() - start) / 1000, target }), 250)
    : undefined;
  try {
    await Promise.all(lanes.map(async (lane) => {
      while (more()) {
        const began = performance.now();
        try {
          await lane.token.remote.sign(lane.token.session, mechanism, lane.key, data);
          latencies.push(performance.now() - began);
        } catch (error) {
          errors++;
          firstError ??= error instanceof Error ? error : new Error('signing failed');
          // A failing key or mechanism fails every time: stop this connection count.
          if (errors >= 10 && latencies.length === 0) throw error;
          // The link itself failed (the client deleted or refused, the server gone): each try
          // would be a new link, hundreds a second in the server's log; the run ends here.
          if (!(error instanceof Pkcs11Error)) throw error;
        }
      }
    }));
  } finally {
    if (progress) clearInterval(progress);
  }
  if (latencies.length === 0 && firstError !== undefined) throw firstError;
  const seconds = (performance.now() - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    connections: lanes.length, signatures: latencies.length, seconds: round(seconds),
    opsPerSecond: round(latencies.length / seconds, 1),
    latencyMs: { p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(percentile(sorted, 100)) },
    errors,
  };
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  if (options.connections.length === 0) throw new ClientError('NTLS_ERR_ARGUMENT', 'no connection count given', 'give --connections, e.g. 1,8,64');
  const setupClient = options.client();
  let generated: { token: TokenSession; handles: number[] } | null = null;
  let setup: TokenSession | undefined;
  try {
    setup = await setupClient.openToken({ slot: options.slot, pin: options.pin });
    let label = options.label;
    if (label === undefined) {
      label = `ntls-bench-${randomBytes(6).toString('hex')}`;
      const made = await setup.generateKey(options.keyType, { label, token: true });
      generated = { token: setup, handles: [made.privateKey, made.publicKey, made.secretKey].filter((h): h is number => h !== undefined) };
    }
    const key = await setup.findKey(label, [CKO.PRIVATE_KEY, CKO.SECRET_KEY]);
    const description = await setup.describeKey(key);
    const mechanism = options.mechanism ?? defaultSignMechanism(description);
    const dataBytes = options.dataBytes ?? 32;
    const data = randomBytes(dataBytes);
    const rows: BenchRow[] = [];
    for (const connections of options.connections) {
      const lanes: Lane[] = [];
      try {
        // Connected a few at a time, so that a large count does not look like a connection flood.
        for (let i = 0; i < connections; i += 8) {
          lanes.push(...await Promise.all(Array.from({ length: Math.min(8, connections - i) }, () => openLane(options, label))));
        }
        // Warm-up: each connection signs once (the server's key cache, this process's code).
        await Promise.all(lanes.map((lane) => lane.token.remote.sign(lane.token.session, mechanism, lane.key, data)));
        rows.push(await measure(options, lanes, mechanism, data));
      } finally {
        await Promise.all(lanes.map(closeLane));
      }
    }
    return {
      server: setupClient.serverNames[0]!, slot: options.slot, keyType: options.label === undefined ? options.keyType : null,
      label, mechanism: mechanismName(mechanism.type), dataBytes, rows,
    };
  } finally {
    if (generated) {
      for (const handle of generated.handles) await generated.token.destroy(handle).catch(() => undefined);
    }
    await setup?.close().catch(() => undefined);
    await setupClient.close();
  }
}
