// TCP keepalive probes for a client connection: TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT
// from the configuration (the guide's "Data path TCP keep alive is configured as" line).
// Node's socket.setKeepAlive() reaches only TCP_KEEPIDLE, so the other two go through a small
// N-API addon (native/keepalive, built from source by node-gyp at `npm install`).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NtlsError } from '../errors/ntls-error.js';

export interface TcpKeepaliveSettings {
  /** TCP_KEEPIDLE: seconds of silence before the first probe. */
  idle: number;
  /** TCP_KEEPINTVL: seconds between probes. */
  interval: number;
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped. */
  count: number;
}

export interface TcpKeepaliveState extends TcpKeepaliveSettings {
  /** SO_KEEPALIVE. */
  enabled: boolean;
}

/** A keepalive setting the socket did not take; `code` is stable, `errno` the system's. */
export class TcpKeepaliveError extends NtlsError {
  declare readonly code: 'NTLS_ERR_TCP_KEEPALIVE';
  constructor(message: string, readonly errno?: string, cause?: unknown) {
    super('NTLS_ERR_TCP_KEEPALIVE', message, { cause });
  }
}

interface Addon {
  setKeepAliveProbes(fd: number, idle: number, interval: number, count: number): void;
  getKeepAliveProbes(fd: number): TcpKeepaliveState;
  getNoDelay(fd: number): boolean;
}

const ADDON = join('native', 'keepalive', 'build', 'Release', 'tcp_keepalive.node');
let addon: Addon | undefined;

/** The addon sits under the package root: ../../ from src/datapath, ../../../ from dist/src/datapath. */
function loadAddon(): Addon {
  if (addon) return addon;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      addon = createRequire(import.meta.url)(candidate) as Addon;
      return addon;
    }
    dir = dirname(dir);
  }
  throw new TcpKeepaliveError(`${ADDON} is not built; run \`npm install\` (it builds native/keepalive with node-gyp)`);
}

interface HandleOwner {
  _handle?: { fd?: number } | null;
  _parent?: HandleOwner | null;
}

/** The file descriptor under a net.Socket, or under the TCP socket a TLSSocket wraps. */
function socketFd(socket: Socket): number {
  let owner: HandleOwner | null | undefined = socket as unknown as HandleOwner;
  for (let depth = 0; owner && depth < 4; depth++) {
    const fd = owner._handle?.fd;
    if (typeof fd === 'number' && fd >= 0) return fd;
    owner = owner._parent;
  }
  throw new TcpKeepaliveError('socket has no file descriptor (not connected, or already closed)');
}

function check(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new TcpKeepaliveError(`${name} must be an integer from 1 to ${max}, not ${value}`);
  }
}

function systemError(error: unknown): TcpKeepaliveError {
  const e = error as { message?: string; errno?: number; syscall?: string };
  const name = Object.entries(constants.errno).find(([, n]) => n === e.errno)?.[0];
  return new TcpKeepaliveError(`${e.syscall ?? 'setsockopt'}: ${e.message ?? String(error)}`, name, error);
}

/**
 * Enables keepalive on the connection with the configured idle time, probe interval and count.
 * Call it after anything that calls socket.setKeepAlive() (or the server's `keepAlive` option):
 * Node 20's setKeepAlive resets TCP_KEEPINTVL to 1 s and TCP_KEEPCNT to 10 (libuv's defaults).
 */
export function applyTcpKeepalive(socket: Socket, settings: TcpKeepaliveSettings): void {
  // Linux limits: TCP_KEEPIDLE and TCP_KEEPINTVL up to 32767 s, TCP_KEEPCNT up to 127.
  check('TCP_KEEPIDLE', settings.idle, 32767);
  check('TCP_KEEPINTVL', settings.interval, 32767);
  check('TCP_KEEPCNT', settings.count, 127);
  const native = loadAddon();
  const fd = socketFd(socket);
  try {
    native.setKeepAliveProbes(fd, settings.idle, settings.interval, settings.count);
  } catch (error) {
    throw systemError(error);
  }
}

/** Reads the keepalive settings back from the kernel (getsockopt); for tests and `ntls info`. */
export function readTcpKeepalive(socket: Socket): TcpKeepaliveState {
  const native = loadAddon();
  const fd = socketFd(socket);
  try {
    return native.getKeepAliveProbes(fd);
  } catch (error) {
    throw systemError(error);
  }
}

/** TCP_NODELAY read back from the kernel: true when Nagle's algorithm is off. */
export function readTcpNoDelay(socket: Socket): boolean {
  const native = loadAddon();
  const fd = socketFd(socket);
  try {
    return native.getNoDelay(fd);
  } catch (error) {
    throw systemError(error);
  }
}
