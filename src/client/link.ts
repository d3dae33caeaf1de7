// The client end of an NTLS link: mutual TLS to the server, the identity exchange, the command
// protocol's version byte, then request/response frames. The relay and the client library build
// on it.
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { FrameReader, serializeFrame, type Frame } from '../protocol/frame.js';
import { encodeIdentity, scanIdentity, type Identity } from '../protocol/identity.js';
import { NtlsError } from '../errors/ntls-error.js';
import { certificateFingerprint, clientTlsContext } from './tls-contexts.js';

export interface LinkOptions {
  host: string;
  port: number;
  /** Client certificate and key, PEM. */
  certificatePem: string;
  keyPem: string;
  /** The server's registered certificate, PEM: the only one accepted. */
  serverCertificatePem: string;
  /** Name sent in the identity exchange. */
  clientName: string;
  /** Command protocol version offered (p11-kit: 0 for 0.24.1). */
  protocolVersion?: number;
  /** How long to wait for each step of set-up after the TLS handshake, and for answers. */
  timeoutMs?: number;
  /**
   * How long TCP and the TLS handshake may take (at most timeoutMs): a handshake takes
   * milliseconds, so a peer silent for this long is not an NTLS server, or one that cannot serve.
   */
  handshakeTimeoutMs?: number;
  maxFrameBytes?: number;
  /** Extra TLS options, for tests of refused offers (weak ciphers and the like). */
  ciphers?: string;
  /** An already connected transport to run TLS over (a proxy, a chosen source address). */
  socket?: Socket;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export type LinkErrorCode = 'NTLS_ERR_SERVER_CERT_MISMATCH' | 'NTLS_ERR_LINK_CLOSED' | 'NTLS_ERR_TIMEOUT' | 'NTLS_ERR_NOT_NTLS' | 'NTLS_ERR_TLS';

/**
 * How far set-up got when a link failed: 'connect' (TCP and the TLS handshake as the client
 * sees it), 'identity' (the client's handshake is done and the server may still refuse its
 * certificate: TLS 1.3 servers judge it after the client's last flight), 'version', or
 * 'open' (an established link).
 */
export type LinkStage = 'connect' | 'identity' | 'version' | 'open';

export const HANDSHAKE_TIMEOUT_MS = 10_000;

// OpenSSL's record-layer complaints when the peer's first bytes are not TLS (ssh, HTTP, a banner).
const NOT_TLS_ERRORS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LENGTH_MISMATCH']);

export class LinkError extends NtlsError {
  declare readonly code: LinkErrorCode;
  /** The socket error's own code (ECONNREFUSED, ERR_SSL_...), when one caused this. */
  readonly errno: string | undefined;
  readonly stage: LinkStage | undefined;
  /** This end's address once TCP was up: what the server's ip check compares. */
  localAddress: string | undefined;

  constructor(code: LinkErrorCode, detail: string, extra: { errno?: string; stage?: LinkStage; cause?: unknown } = {}) {
    super(code, detail, { cause: extra.cause });
    this.errno = extra.errno;
    this.stage = extra.stage;
  }
}

export class Link {
  private readonly frames: FrameReader;
  private readonly waiting: Array<{ resolve(frame: Frame): void; reject(error: Error): void }> = [];
  private nextCallCode = 1;
  private closedError: LinkError | null = null;

  constructor(readonly socket: TLSSocket, readonly server: Identity, readonly protocolVersion: number, initial: Buffer, maxFrameBytes: number) {
    this.frames = new FrameReader(maxFrameBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new LinkError('NTLS_ERR_LINK_CLOSED', 'the server closed the link', { stage: 'open' })));
    socket.on('error', () => { /* close follows */ });
    if (initial.length) this.onData(initial);
  }

  /** Sends one request body; requests may be pipelined, answers come back in order. */
  request(body: Buffer, options: Buffer = Buffer.alloc(0)): Promise<Frame> {
    if (this.closedError) return Promise.reject(this.closedError);
    const callCode = this.nextCallCode++;
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(serializeFrame({ callCode, options, body }));
    });
  }

  /** Ends the link at once, failing every request in flight with `error` (a timeout, say). */
  abort(error: LinkError): void {
    this.fail(error);
    this.socket.destroy();
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.waiting.length;
  }

  /** Raw bytes, for tests that send what a well-behaved client would not. */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    this.frames.push(chunk);
    let frame: Frame | null;
    try {
      while ((frame = this.frames.next())) this.waiting.shift()?.resolve(frame);
    } catch (error) {
      // An answer larger than maxFrameBytes: the stream cannot be followed any further.
      this.abort(new LinkError('NTLS_ERR_LINK_CLOSED', `the server sent an unreadable answer: ${(error as Error).message}`, { stage: 'open', cause: error }));
    }
  }

  private fail(error: LinkError): void {
    this.closedError ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

/** A link after the identity exchange, before the command protocol: what the relay passes on. */
export interface IdentifiedLink {
  socket: TLSSocket;
  server: Identity;
  /** Bytes the server sent after its identity line, already read. */
  initial: Buffer;
}

/** Mutual TLS and the identity exchange; the command protocol is the caller's. */
export function openIdentifiedLink(options: LinkOptions): Promise<IdentifiedLink> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const handshakeTimeoutMs = Math.min(options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS, timeoutMs);
  const where = `${options.host}:${options.port}`;
  const expected = certificateFingerprint(options.serverCertificatePem);
  return new Promise((resolve, reject) => {
    let settled = false;
    let stage: LinkStage = 'connect';
    let localAddress: string | undefined;
    const done = (error: Error | null, link?: IdentifiedLink) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      if (error) {
        if (error instanceof LinkError) error.localAddress ??= localAddress;
        socket.destroy();
        reject(error);
      } else resolve(link!);
    };
    const socket = connect({
      host: options.host,
      port: options.port,
      secureContext: clientTlsContext(options),
      socket: options.socket,
      // The server is identified by its registered certificate, pinned by fingerprint below,
      // not by a CA or a host name.
      rejectUnauthorized: false,
    });
    // Requests are small and answered at once: Nagle's algorithm would hold a request's second
    // write until the server's delayed ACK of the first (up to 40 ms a call).
    socket.setNoDelay(true);
    options.socket?.setNoDelay(true);
    let tcpUp = options.socket !== undefined;
    socket.once('connect', () => { tcpUp = true; });
    const handshakeTimedOut = () => done(new LinkError('NTLS_ERR_TIMEOUT', tcpUp
      ? `${where} accepted the connection but did not answer the TLS handshake within ${handshakeTimeoutMs} ms`
      : `${where} did not accept a connection within ${handshakeTimeoutMs} ms`, { stage }));
    let timer = setTimeout(handshakeTimedOut, handshakeTimeoutMs);
    let received: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      try {
        const scan = scanIdentity(received, 'server');
        if (!scan.done) return;
        // Hold further bytes until the caller attaches its own reader.
        socket.pause();
        done(null, { socket, server: scan.identity, initial: scan.rest });
      } catch {
        done(new LinkError('NTLS_ERR_NOT_NTLS', `${where} is not an NTLS server`, { stage }));
      }
    };
    socket.once('secureConnect', () => {
      localAddress = socket.localAddress;
      const presented = socket.getPeerCertificate();
      if (!presented?.fingerprint256 || presented.fingerprint256 !== expected) {
        return done(new LinkError('NTLS_ERR_SERVER_CERT_MISMATCH', `${where} presented a certificate other than the registered one (it may have been regenerated; add the new one)`, { stage }));
      }
      stage = 'identity';
      clearTimeout(timer);
      timer = setTimeout(() => done(new LinkError('NTLS_ERR_TIMEOUT', `no answer from ${where} within ${timeoutMs} ms`, { stage })), timeoutMs);
      socket.on('data', onData);
      socket.write(encodeIdentity('client', options.clientName));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof LinkError) return done(error);
      if (stage === 'connect' && error.code !== undefined && NOT_TLS_ERRORS.has(error.code)) {
        return done(new LinkError('NTLS_ERR_NOT_NTLS', `${where} answered with something other than TLS`, { errno: error.code, stage, cause: error }));
      }
      // OpenSSL's messages end with a newline and name its source files; one line is enough.
      done(new LinkError('NTLS_ERR_TLS', error.message.replace(/\s+/g, ' ').trim(), { errno: error.code, stage, cause: error }));
    });
    socket.on('close', () => done(new LinkError('NTLS_ERR_LINK_CLOSED', 'the server closed the link during set-up (is this client registered?)', { stage })));
  });
}

/** A link ready for frames: identity exchange, then the command protocol's version byte. */
export async function openLink(options: LinkOptions): Promise<Link> {
  const { socket, server, initial } = await openIdentifiedLink(options);
  return new Promise((resolve, reject) => {
    let received = initial;
    const timer = setTimeout(() => fail(new LinkError('NTLS_ERR_TIMEOUT', 'the server did not answer the protocol version', { stage: 'version' })), options.timeoutMs ?? 10_000);
    const fail = (error: LinkError) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const take = () => {
      if (received.length < 1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(new Link(socket, server, received[0]!, received.subarray(1), options.maxFrameBytes ?? 64 * 1024 * 1024));
      socket.resume();
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      take();
    };
    const onClose = () => fail(new LinkError('NTLS_ERR_LINK_CLOSED', 'the server closed the link during set-up', { stage: 'version' }));
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(Buffer.from([options.protocolVersion ?? 0]));
    socket.resume();
    take();
  });
}
