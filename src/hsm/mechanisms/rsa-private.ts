// RSA private-key operations without a digest (raw PKCS#1 v1.5 over a DigestInfo, PSS over a
// prehash, OAEP and raw decryption) exist in node:crypto only as synchronous calls
// (privateEncrypt, privateDecrypt). An RSA-4096 private operation takes milliseconds, so they
// run on a small pool of worker threads instead of the event loop. KeyObjects cross the thread
// boundary by postMessage without being re-parsed.

import { NtlsError } from '../../errors/ntls-error.js';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';

export interface PrivateRequest {
  /** privateEncrypt (signature primitive) or privateDecrypt */
  operation: 'encrypt' | 'decrypt';
  key: KeyObject;
  /** crypto.constants.RSA_*_PADDING */
  padding: number;
  data: Buffer;
  oaepHash?: string;
  oaepLabel?: Buffer;
}

// Plain JavaScript: it runs with eval so that it works from the sources (vitest) and from dist.
const workerSource = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
parentPort.on('message', (m) => {
  try {
    const options = { key: m.key, padding: m.padding };
    if (m.oaepHash) options.oaepHash = m.oaepHash;
    if (m.oaepLabel) options.oaepLabel = m.oaepLabel;
    const out = m.operation === 'encrypt' ? crypto.privateEncrypt(options, m.data) : crypto.privateDecrypt(options, m.data);
    parentPort.postMessage({ id: m.id, out });
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: String(error && error.message) });
  }
});
`;

interface Pending {
  resolve(out: Buffer): void;
  reject(error: Error): void;
}

interface PoolWorker {
  worker: Worker;
  busy: number;
}

/** OpenSSL refused the input (not below the modulus, bad OAEP encoding ...). */
export class RsaInputError extends NtlsError {
  constructor(message: string) {
    super('NTLS_ERR_RSA_INPUT', message);
  }
}
/** The worker thread itself failed; no answer about the input. */
export class RsaWorkerFailure extends NtlsError {
  constructor(message: string) {
    super('NTLS_ERR_RSA_WORKER', message);
  }
}

class RsaPrivatePool {
  private workers: PoolWorker[] = [];
  private pending = new Map<number, Pending & { owner: PoolWorker }>();
  private nextId = 1;

  constructor(private readonly size: number) {}

  run(request: PrivateRequest): Promise<Buffer> {
    const owner = this.pick();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, owner });
      if (owner.busy++ === 0) owner.worker.ref();
      // A Buffer is often a view into a larger pooled ArrayBuffer, which postMessage would copy
      // whole; a fresh Uint8Array carries just the bytes.
      owner.worker.postMessage({
        id, operation: request.operation, key: request.key, padding: request.padding,
        data: new Uint8Array(request.data), oaepHash: request.oaepHash,
        oaepLabel: request.oaepLabel ? new Uint8Array(request.oaepLabel) : undefined,
      });
    });
  }

  private pick(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const candidate of this.workers) if (!best || candidate.busy < best.busy) best = candidate;
    if (best && (best.busy === 0 || this.workers.length >= this.size)) return best;
    return this.spawn();
  }

  private spawn(): PoolWorker {
    const worker = new Worker(workerSource, { eval: true });
    const entry: PoolWorker = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (message: { id: number; out?: Uint8Array; error?: string }) => {
      const job = this.pending.get(message.id);
      if (!job) return;
      this.pending.delete(message.id);
      this.settle(entry);
      if (message.out) job.resolve(Buffer.from(message.out.buffer, message.out.byteOffset, message.out.byteLength));
      else job.reject(new RsaInputError(message.error ?? 'RSA operation failed'));
    });
    worker.on('error', (error) => this.fail(entry, new RsaWorkerFailure(error.message)));
    worker.on('exit', () => this.fail(entry, new RsaWorkerFailure('RSA worker exited')));
    this.workers.push(entry);
    return entry;
  }

  private settle(entry: PoolWorker): void {
    if (--entry.busy === 0) entry.worker.unref();
  }

  private fail(entry: PoolWorker, error: Error): void {
    this.workers = this.workers.filter((candidate) => candidate !== entry);
    for (const [id, job] of this.pending) {
      if (job.owner !== entry) continue;
      this.pending.delete(id);
      job.reject(error);
    }
  }
}

/**
 * Keys above this many bits (imported: ntls generates up to 4096) are heavy: an RSA-16384
 * signature takes about 300 ms of a core, an RSA-2048 one 1 ms.
 */
export const HEAVY_RSA_BITS = 4096;

const pool = new RsaPrivatePool(Math.max(1, Math.min(4, availableParallelism())));
// Heavy keys take turns on a thread of their own: a client signing with one on many links holds
// one thread, and everyone else's RSA operations, PIN checks and signatures keep the others.
const heavyLane = new RsaPrivatePool(1);

export const isHeavyRsa = (bits: number) => bits > HEAVY_RSA_BITS;

/** Runs one RSA private-key primitive off the event loop; rejects with RsaInputError or RsaWorkerFailure. */
export function rsaPrivate(request: PrivateRequest): Promise<Buffer> {
  const heavy = isHeavyRsa(request.key.asymmetricKeyDetails?.modulusLength ?? 0);
  return (heavy ? heavyLane : pool).run(request);
}
