// The calls of an application's threads share the module's one link at once, as they do through
// p11-kit-client.so: each call's frame goes out whole under a code of its own, and each answer
// reaches the call with its code, whatever the order answers come in. A proxy between the module
// and a real relay reads the frames both ways: how many calls are in flight, answers delivered out
// of order, and the link cut while calls are in flight.
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, startRelay, type Relay } from '../support/e2e.js';
import { buildModuleCheck, moduleCheck, moduleWorld, PIN, writeModuleConfig, type ModuleWorld } from './support.js';

const HEADER = 12;

/** Splits a p11-kit stream (a version byte, then frames of a 12-byte header and a body) into frames. */
class FrameReader {
  private pending = Buffer.alloc(0);
  private versionSeen = false;

  constructor(private readonly onVersion: (b: Buffer) => void, private readonly onFrame: (code: number, frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (!this.versionSeen && this.pending.length > 0) {
      this.versionSeen = true;
      this.onVersion(this.pending.subarray(0, 1));
      this.pending = this.pending.subarray(1);
    }
    while (this.pending.length >= HEADER) {
      const length = HEADER + this.pending.readUInt32BE(4) + this.pending.readUInt32BE(8);
      if (this.pending.length < length) return;
      const frame = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      this.onFrame(frame.readUInt32BE(0), frame);
    }
  }
}

interface Watch {
  /** The most requests sent by the module and not yet answered, at any moment. */
  maxInFlight: number;
  /** Answers the proxy let a later answer overtake. */
  overtaken: number;
  requests: number;
  cutAfter: number | null;
}

/**
 * A proxy on `path` to the relay on `relaySocket`, passing frames whole. With `reorder`, an answer
 * waits up to 20 ms for the next one and goes after it. With `spacingMs`, answers wait in a queue
 * and go one every spacingMs (a slow server that answers in order). With `watch.cutAfter` = N,
 * both sockets close once N requests have gone through (connections made later pass everything).
 */
async function frameProxy(path: string, relaySocket: string, options: { reorder?: boolean; spacingMs?: number }): Promise<{ watch: Watch; close(): Promise<void> }> {
  const watch: Watch = { maxInFlight: 0, overtaken: 0, requests: 0, cutAfter: null };
  const sockets: Socket[] = [];
  const server: Server = createServer((module) => {
    const upstream = createConnection(relaySocket);
    sockets.push(module, upstream);
    module.on('error', () => undefined);
    upstream.on('error', () => undefined);
    const inFlight = new Set<number>();
    let cut = false;
    let held: Buffer | null = null;
    let heldTimer: NodeJS.Timeout | null = null;
    const releaseHeld = () => {
      if (heldTimer) clearTimeout(heldTimer);
      heldTimer = null;
      if (held && !module.destroyed) module.write(held);
      held = null;
    };
    const toRelay = new FrameReader((v) => upstream.write(v), (code, frame) => {
      if (cut) return;
      inFlight.add(code);
      watch.maxInFlight = Math.max(watch.maxInFlight, inFlight.size);
      watch.requests++;
      upstream.write(frame);
      if (watch.cutAfter !== null && watch.requests >= watch.cutAfter) {
        cut = true;
        watch.cutAfter = null;
        module.destroy();
        upstream.destroy();
      }
    });
    const queue: Array<{ code: number; frame: Buffer }> = [];
    let spacing: NodeJS.Timeout | null = null;
    const releaseOne = () => {
      const next = queue.shift();
      if (next) inFlight.delete(next.code);
      if (next && !module.destroyed) module.write(next.frame);
      spacing = queue.length ? setTimeout(releaseOne, options.spacingMs) : null;
    };
    const toModule = new FrameReader((v) => module.write(v), (code, frame) => {
      if (options.spacingMs) {
        // In flight until the module has the answer.
        queue.push({ code, frame: Buffer.from(frame) });
        spacing ??= setTimeout(releaseOne, options.spacingMs);
        return;
      }
      inFlight.delete(code);
      if (!options.reorder) {
        module.write(frame);
        return;
      }
      if (held) {
        watch.overtaken++;
        module.write(frame);
        releaseHeld();
        return;
      }
      held = Buffer.from(frame);
      heldTimer = setTimeout(releaseHeld, 20);
    });
    module.on('data', (d: Buffer) => toRelay.push(d));
    upstream.on('data', (d: Buffer) => toModule.push(d));
    module.on('close', () => { if (spacing) clearTimeout(spacing); upstream.destroy(); });
    upstream.on('close', () => { releaseHeld(); if (!queue.length) module.destroy(); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    watch,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let world: ModuleWorld;
let check: string;
let relay: Relay;

beforeAll(async () => {
  world = await moduleWorld('tess', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
  const files = { name: 'tess', dir: world.folder, cert: join(world.folder, 'tess.pem'), key: join(world.folder, 'tessKey.pem') };
  relay = await startRelay(world.daemon, files, join(world.work, 'relay.sock'));
});

afterAll(async () => {
  await relay?.stop();
  await world?.close();
});

/**
 * module-check sign-threads (T threads, N signatures each) through a frameProxy named `name`, with
 * the module's settings file holding `settings` meanwhile; what it printed and what the proxy saw.
 */
async function signThroughProxy(name: string, options: { reorder?: boolean; spacingMs?: number }, threads: number, signatures: number, settings: string[] = []) {
  const socket = join(world.work, `${name}.sock`);
  const proxy = await frameProxy(socket, relay.socketPath, options);
  if (settings.length) writeModuleConfig(world, settings);
  try {
    const run = await moduleCheck(check, world.module, ['sign-threads', '0', PIN, String(threads), String(signatures)],
      { env: { ...world.env, NTLS_PKCS11_RELAY: `unix:path=${socket}` } });
    return { ...run, watch: proxy.watch };
  } finally {
    rmSync(join(world.folder, 'pkcs11-module.conf'), { force: true });
    await proxy.close();
  }
}

describe('threads share the link', () => {
  it('the calls of 8 threads are in flight at once, not one after the other', async () => {
    const { result, values, watch } = await signThroughProxy('watch', {}, 8, 40);
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('threads')).toBe('8 signatures=320');
    expect(watch.maxInFlight, 'requests in flight at once').toBeGreaterThan(1);
  });

  it('answers that come out of order reach their own calls (matched by frame code)', async () => {
    const { result, values, watch } = await signThroughProxy('reorder', { reorder: true }, 8, 20);
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('threads')).toBe('8 signatures=160');
    expect(watch.overtaken, 'answers overtaken').toBeGreaterThan(10);
  });

  it('a server that answers slowly but steadily: calls queued behind others wait while answers keep coming (timeout 2 s, 10 calls in flight, an answer every 250 ms)', async () => {
    const { result, values, watch } = await signThroughProxy('slow', { spacingMs: 250 }, 10, 1, ['timeout: 2']);
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('threads')).toBe('10 signatures=10');
    // The last of 10 queued answers comes 2.5 s after its request: past the timeout, were it counted from the request alone.
    expect(watch.maxInFlight).toBeGreaterThan(8);
    expect(result.stderr).not.toMatch(/no answer within/);
  });

  it('C_Finalize while 6 threads sign: it returns CKR_OK once their calls under way end; their next calls answer CKR_CRYPTOKI_NOT_INITIALIZED; no hang, no crash', async () => {
    const started = Date.now();
    const { result, values } = await moduleCheck(check, world.module, ['finalize-while-signing', '0', PIN, '6'], { env: world.env });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(result.signal, explain(result)).toBe(null);
    expect(result.status, explain(result)).toBe(0);
    expect(values.get('finalize')).toBe('CKR_OK');
    expect(values.get('signed')).toBe('yes');
    for (let i = 0; i < 6; i++) expect(values.get(`thread-${i}`), explain(result)).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect(values.get('after')).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
  });

  it('the link cut with calls of several threads in flight: each ends at once with an error, none hangs or crashes; a new process signs', async () => {
    const proxy = await frameProxy(join(world.work, 'cut.sock'), relay.socketPath, { reorder: false });
    writeModuleConfig(world, ['timeout: 20']);
    try {
      proxy.watch.cutAfter = 120;
      const started = Date.now();
      const { result } = await moduleCheck(check, world.module, ['sign-threads', '0', PIN, '8', '200'],
        { env: { ...world.env, NTLS_PKCS11_RELAY: `unix:path=${join(world.work, 'cut.sock')}` } });
      // Well under the 20 s receive timeout: the calls in flight learn of the cut from the socket.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(result.signal, explain(result)).toBe(null);
      expect(result.status, explain(result)).toBe(1);
      const failures = result.stdout.split('\n').filter((l) => l.startsWith('FAIL thread'));
      expect(failures.length, explain(result)).toBe(8);
      for (const line of failures) expect(line).toMatch(/rv=(CKR_DEVICE_ERROR|CKR_SESSION_HANDLE_INVALID)$/);
      expect(result.stderr).toMatch(/ntls-pkcs11: C_\w+: the link closed; the link to the server is gone/);
      expect(proxy.watch.maxInFlight).toBeGreaterThan(1);

      const again = await moduleCheck(check, world.module, ['sign-threads', '0', PIN, '4', '10'],
        { env: { ...world.env, NTLS_PKCS11_RELAY: `unix:path=${join(world.work, 'cut.sock')}` } });
      expect(again.result.status, explain(again.result)).toBe(0);
      expect(again.values.get('threads')).toBe('4 signatures=40');
    } finally {
      rmSync(join(world.folder, 'pkcs11-module.conf'), { force: true });
      await proxy.close();
    }
  });
});
