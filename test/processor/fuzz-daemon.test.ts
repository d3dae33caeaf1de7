// The daemon under fuzzed p11-kit messages: mutated real requests (captured from
// p11-kit-client.so) and random bodies, framed correctly, sent pipelined over a real TLS link;
// then fuzzed frame headers. The daemon never crashes or hangs: each message gets an answer or
// its connection is closed with the guide's line; a well-behaved client is served throughout.
// FUZZ_N sets the number of messages (CI: 100,000), FUZZ_SEED the generator's seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Link } from '../../src/client/link.js';
import { loadCaptures } from '../protocol/p11kit/captured.js';
import { BACKENDS, TestBackend } from '../support/backends.js';
import { Daemon, keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, runNtls, sleep, startDaemon, type TestClient } from '../support/daemon.js';

const N = Number(process.env.FUZZ_N ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

/** xorshift32: reproducible from FUZZ_SEED. */
function generator(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  return { next, below: (n: number) => next() % n };
}

function seedBodies(): Buffer[] {
  const bodies: Buffer[] = [];
  for (const capture of loadCaptures()) {
    for (const session of capture.sessions) {
      for (const exchange of session.exchanges) bodies.push(Buffer.from(exchange.request.body, 'hex'));
    }
  }
  return bodies;
}

function mutate(rng: ReturnType<typeof generator>, seeds: Buffer[]): Buffer {
  const base = Buffer.from(seeds[rng.below(seeds.length)]!);
  switch (rng.below(6)) {
    case 0: { // flip bits
      for (let i = 0, n = 1 + rng.below(4); i < n && base.length; i++) base[rng.below(base.length)]! ^= 1 << rng.below(8);
      return base;
    }
    case 1: // truncate
      return base.subarray(0, rng.below(base.length + 1));
    case 2: { // overwrite a 32-bit field with an extreme value
      if (base.length >= 4) base.writeUInt32BE([0, 0xffffffff, 0x7fffffff, 0x80000000, rng.next()][rng.below(5)]!, rng.below(base.length - 3));
      return base;
    }
    case 3: // append garbage
      return Buffer.concat([base, Buffer.from(Array.from({ length: 1 + rng.below(32) }, () => rng.below(256)))]);
    case 4: { // random body with a valid call id
      const body = Buffer.from(Array.from({ length: 4 + rng.below(64) }, () => rng.below(256)));
      body.writeUInt32BE(rng.below(96), 0);
      return body;
    }
    default: // another call's arguments under this call id
      if (base.length >= 4) base.writeUInt32BE(rng.below(96), 0);
      return base;
  }
}

describe.each(BACKENDS)(`fuzzing the daemon with ${N} messages (seed ${SEED}), %s backend`, (kind) => {
  let backend: TestBackend;
  let home: string;
  let daemon: Daemon;
  let fuzzer: TestClient;
  let steady: TestClient;

  beforeAll(async () => {
    backend = new TestBackend(kind, [{ label: 'default', soPin: 'so-pin-1' }, { label: 'steady', soPin: 'so-pin-1' }]);
    home = makeHome({ hsm: backend.hsmConfig({ kdfCost: 1024, pinMinLength: 4 }), datapath: { receiveTimeout: 0, maxConnections: 64 } });
    fuzzer = await makeClient('fuzzer');
    steady = await makeClient('steady');
    registerClient(home, fuzzer);
    registerClient(home, steady);
    daemon = await startDaemon(home, backend.env);
    await backend.createPartition(home, 'steady');
    expect((await runNtls(['client', 'assign-partition', '-c', 'fuzzer', '-p', 'default', '--home', home])).status).toBe(0);
    expect((await runNtls(['client', 'assign-partition', '-c', 'steady', '-p', 'steady', '--home', home])).status).toBe(0);
  });

  afterAll(async () => {
    await daemon?.stop();
    removeHome(home);
    backend?.remove();
  });

  it('answers or closes every fuzzed message, never crashes, and keeps serving a well-behaved client', async () => {
    const rng = generator(SEED);
    const seeds = seedBodies();
    expect(seeds.length).toBeGreaterThan(50);
    const wellBehaved = await link(daemon, steady);
    let steadyRounds = 0;
    let stop = false;
    const steadyLoop = (async () => {
      while (!stop) {
        const answer = await wellBehaved.request(keepaliveBody());
        expect(answer.body.equals(keepaliveBody())).toBe(true);
        steadyRounds++;
        await sleep(5);
      }
    })();

    let answered = 0;
    let errorAnswers = 0;
    let reconnects = 0;
    let current: Link = await link(daemon, fuzzer);
    const batch = 200;
    for (let sent = 0; sent < N; sent += batch) {
      const bodies = Array.from({ length: Math.min(batch, N - sent) }, () => mutate(rng, seeds));
      const results = await Promise.allSettled(bodies.map((b) => current.request(b)));
      for (const r of results) {
        if (r.status === 'fulfilled') {
          answered++;
          if (r.value.body.length >= 4 && r.value.body.readUInt32BE(0) === 0) errorAnswers++;
        }
      }
      if (results.some((r) => r.status === 'rejected')) {
        reconnects++;
        current = await link(daemon, fuzzer);
      }
    }
    stop = true;
    await steadyLoop;
    await current.close();
    await wellBehaved.close();
    expect(daemon.child.exitCode).toBeNull();
    expect(answered).toBeGreaterThan(N * 0.9);
    expect(errorAnswers).toBeGreaterThan(0);
    expect(steadyRounds).toBeGreaterThan(0);
    // A closed connection always comes with the guide's reason.
    const forwardFailures = daemon.bodies().filter((b) => b.includes('Fail to forward client request')).length;
    expect(forwardFailures).toBe(reconnects);
    console.log(`fuzz: ${N} messages, ${answered} answered (${errorAnswers} with an ERROR message), ${reconnects} connections closed, ${steadyRounds} steady keepalives`);
  }, 600_000);

  it('fuzzed frame headers declaring 2 GiB or more: a malformed header closes that connection with the guide\'s line, the daemon goes on', async () => {
    const rng = generator(SEED + 1);
    for (let i = 0; i < 50; i++) {
      const l = await link(daemon, fuzzer);
      const header = Buffer.alloc(12);
      header.writeUInt32BE(rng.next(), 0);
      header.writeUInt32BE(rng.next(), 4);
      // Smaller requests over maxFrameBytes are skipped and answered (test/client/relay-large-request.test.ts).
      header.writeUInt32BE((rng.next() | 0x80000000) >>> 0, 8);
      const closed = new Promise<void>((resolve) => l.socket.once('close', () => resolve()));
      l.writeRaw(header);
      await closed;
    }
    // A datapath worker's lines reach lunalogs through the main process, a moment after the close.
    const malformed = () => daemon.bodies().filter((b) => b.includes('Client request header malformed')).length;
    for (let wait = 0; wait < 50 && malformed() < 50; wait++) await sleep(100);
    expect(malformed()).toBeGreaterThanOrEqual(50);
    const l = await link(daemon, steady);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
    expect(daemon.child.exitCode).toBeNull();
  });
});
