// Attack drivers against a running daemon, shared by the hardening tests and bench/attacks.ts:
// frames that declare much and send little, idle links from one client, a flood of sockets that
// never speak TLS, and the victim's measure (calls served, new links made). Loopback only; every
// wait is bounded and every socket is closed by stop()/close().
import { connect as netConnect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { openLink, type Link } from '../../src/client/link.js';
import { CKR } from '../../src/pkcs11/constants.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/frame.js';
import { decodeResponse, encodeRequest, P11KIT_HANDSHAKE, request, responseRv, type P11KitRequest } from '../../src/protocol/p11kit/index.js';

export interface Endpoint {
  host: string;
  port: number;
  serverCertificatePem: string;
}

export interface ClientIdentity {
  name: string;
  certificatePem: string;
  keyPem: string;
}

export function endpointOf(home: string, port: number): Endpoint {
  return { host: '127.0.0.1', port, serverCertificatePem: readFileSync(`${home}/server/server.pem`, 'utf8') };
}

export function openClientLink(endpoint: Endpoint, client: ClientIdentity, timeoutMs = 8000, localAddress?: string): Promise<Link> {
  const socket = localAddress ? netConnect({ host: endpoint.host, port: endpoint.port, localAddress }) : undefined;
  return openLink({
    host: endpoint.host, port: endpoint.port, clientName: client.name,
    certificatePem: client.certificatePem, keyPem: client.keyPem,
    serverCertificatePem: endpoint.serverCertificatePem, timeoutMs, socket,
  }).catch((error: unknown) => {
    socket?.destroy();
    throw error;
  });
}

function body(req: P11KitRequest): Buffer {
  const encoded = encodeRequest(req);
  if (!encoded.ok) throw encoded.error;
  return encoded.value;
}

const GET_INFO = body(request('C_GetInfo', {}));

export interface CallTally {
  ok: number;
  hostMemory: number;
  /** Any other answer, or no answer within the time allowed. */
  failed: number;
}

async function rvOf(link: Link, req: Buffer, call: 'C_Initialize' | 'C_GetInfo', timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs); });
  try {
    const frame = await Promise.race([link.request(req), timeout]);
    if (frame === null) return null;
    const decoded = decodeResponse(frame.body, call);
    return decoded.ok ? responseRv(decoded.value) : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** C_Initialize, then `count` C_GetInfo calls one after the other: what a client gets served. */
export async function servedCalls(link: Link, count: number, timeoutMs = 5000): Promise<CallTally> {
  const tally: CallTally = { ok: 0, hostMemory: 0, failed: 0 };
  const init = await rvOf(link, body(request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null })), 'C_Initialize', timeoutMs);
  if (init !== CKR.OK && init !== CKR.CRYPTOKI_ALREADY_INITIALIZED) {
    // Not even initialised: every call counts as refused, by memory or otherwise.
    if (init === CKR.HOST_MEMORY) tally.hostMemory = count;
    else tally.failed = count;
    return tally;
  }
  for (let i = 0; i < count; i++) {
    const rv = await rvOf(link, GET_INFO, 'C_GetInfo', timeoutMs);
    if (rv === CKR.OK) tally.ok++;
    else if (rv === CKR.HOST_MEMORY) tally.hostMemory++;
    else tally.failed++;
  }
  return tally;
}

export interface LinkTally {
  made: number;
  failed: number;
  /** Milliseconds each attempt took (made or not). */
  times: number[];
}

/**
 * `count` new links one after the other, each allowed `timeoutMs`, each counted as made only
 * once it has served a call (C_Initialize and C_GetInfo), then closed.
 */
export async function newLinks(endpoint: Endpoint, client: ClientIdentity, count: number, timeoutMs = 5000): Promise<LinkTally> {
  const tally: LinkTally = { made: 0, failed: 0, times: [] };
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    try {
      const link = await openClientLink(endpoint, client, timeoutMs);
      const served = await servedCalls(link, 1, Math.max(1, timeoutMs - (Date.now() - started)));
      if (served.ok === 1) tally.made++;
      else tally.failed++;
      link.socket.destroy();
    } catch {
      tally.failed++;
    }
    tally.times.push(Date.now() - started);
  }
  return tally;
}

/** A frame header declaring `declared` body bytes, followed by the first `sent` of them. */
export function partialFrame(declared: number, sent: number): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES + sent);
  out.writeUInt32BE(1, 0);
  out.writeUInt32BE(0, 4);
  out.writeUInt32BE(declared, 8);
  return out;
}

/**
 * Opens `count` links of one client (up to `concurrency` handshakes at once); stops at the first
 * refusal when `untilRefused`. Returns the links made.
 */
export async function openMany(endpoint: Endpoint, client: ClientIdentity, count: number, concurrency = 16, timeoutMs = 15_000): Promise<{ links: Link[]; refused: number }> {
  const links: Link[] = [];
  let refused = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        links.push(await openClientLink(endpoint, client, timeoutMs));
      } catch {
        refused++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { links, refused };
}

export async function closeAll(links: readonly Link[]): Promise<void> {
  await Promise.all(links.map((l) => {
    l.socket.destroy();
    return Promise.resolve();
  }));
}

/**
 * Sockets that connect and never send a byte, from `addresses` loopback source addresses
 * (127.0.x.y, never 127.0.0.1), each reopened as soon as the daemon closes it, until stop().
 */
export class UnauthenticatedFlood {
  private readonly sockets = new Set<Socket>();
  private running = false;
  opened = 0;
  closedByServer = 0;

  constructor(private readonly endpoint: { host: string; port: number }, readonly size = 2000, readonly addresses = 40, readonly firstAddress = 10) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.size; i++) this.open(i);
  }

  /** Resolves once `count` sockets are open at the same time (bounded). */
  async rampedUp(count = this.size, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  private open(i: number): void {
    if (!this.running) return;
    const n = this.firstAddress + (i % this.addresses);
    const socket = netConnect({ host: this.endpoint.host, port: this.endpoint.port, localAddress: `127.0.${Math.floor(n / 200)}.${(n % 200) + 10}` });
    this.opened++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (!this.running) return;
      this.closedByServer++;
      // Reopened at once, as the attack did; a macrotask apart so the loop yields.
      setImmediate(() => this.open(i));
    });
  }

  stop(): void {
    this.running = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

/** Resident set size of a process, in MiB (from /proc): now and its peak. */
export function rssOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMiB: Math.round(kib('VmRSS') / 1024), peakMiB: Math.round(kib('VmHWM') / 1024) };
}
