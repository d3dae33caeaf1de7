// One client connection through its states: TLS handshake, certificate identity, the NTLS
// identity exchange, the command processor's instance, then request frames until it ends.
// Every step writes the guide's line; unexpected events write a debug line naming the state.
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { FrameError, FrameReader, MALFORMED_FRAME_BYTES, serializeFrame, type Frame } from '../protocol/frame.js';
import { encodeIdentity, scanIdentity } from '../protocol/identity.js';
import type { CommandProcessorModule, ProcessorInstance } from '../processor/contract.js';
import type { RegisteredClient } from '../registry/client-registry.js';
import { ConnectionState } from './connection-state.js';
import { ConnectionBudget, type ClientShares, type MemoryBudget } from './memory-budget.js';
import { peerOf, plainAddress } from './peer.js';
import type { DatapathStatistics } from './statistics.js';
import { classifyHandshakeFailure, type HandshakeFailure } from './tls-failure.js';

/** Answers batched beyond this size are written without waiting for the rest of the batch. */
const BATCH_FLUSH_BYTES = 256 * 1024;
const MALFORMED = Symbol('malformed frame header');

export interface ConnectionDependencies {
  logger: Logger;
  /** The daemon-wide budget for request buffers. */
  memory: MemoryBudget;
  /** Each registered client's share of it. */
  clientShares: ClientShares;
  settings: Config['datapath'];
  ipCheck: boolean;
  serverName: string;
  secureContext(): SecureContext;
  clientByFingerprint(fingerprint: string): RegisteredClient | undefined;
  /** Takes one of the client's connection slots; false when it has all it may have. */
  admitClient(client: string): boolean;
  /** Writes `Unable to create a new connection.`, at most once a second. */
  connectionRefused(): void;
  /** Gives back a slot taken by admitClient. */
  leaveClient(client: string): void;
  processor: Pick<CommandProcessorModule, 'cp_server_connected'>;
  statistics: DatapathStatistics;
  /** Called once when the connection leaves the pending phase (identified, or closed before). */
  onSettled(connection: Connection): void;
  onClosed(connection: Connection): void;
}

export class Connection {
  state = ConnectionState.Handshake;
  readonly peer: string;
  readonly address: string;
  /** The registered client's name once known; the address until then, as the guide prints it. */
  clientName: string;
  /** The TLS socket, or the raw socket of a local (unix socket) connection. */
  private readonly stream: Socket;
  private instance: ProcessorInstance | null = null;
  private frames: FrameReader;
  private received: Buffer = Buffer.alloc(0);
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** Ends an authenticated link when its client certificate's validity ends. */
  private expiryTimer: NodeJS.Timeout | null = null;
  private receiveTimer: NodeJS.Timeout | null = null;
  /** Runs from a request's header to its last byte: a request must arrive whole in time. */
  private frameTimer: NodeJS.Timeout | null = null;
  /** The client whose connection slot and memory share this connection holds. */
  private admittedAs: string | null = null;
  private fingerprint = '';
  private readonly budget: ConnectionBudget;
  private versionNegotiated = false;
  private settled = false;
  private closing = false;
  private closed = false;
  private processing = false;

  /**
   * `local`: a connection on the home's unix socket, from this host. The socket file's
   * permissions are its authentication, so it skips TLS and the identity exchange.
   */
  constructor(readonly id: number, readonly raw: Socket, private readonly deps: ConnectionDependencies, readonly local = false) {
    this.peer = local ? `local/${id}` : peerOf(raw);
    this.address = local ? 'local' : plainAddress(raw.remoteAddress);
    this.clientName = this.address;
    this.budget = new ConnectionBudget(deps.memory, deps.settings.connectionMemoryBudget);
    // A request larger than maxFrameBytes, or than one connection may ever hold, is refused: its
    // bytes are skipped as they come and that call alone fails. Memory is reserved as the bytes
    // arrive (a peer that declares much and sends little holds little). Only a length no
    // buffer could take is a malformed header that ends the link.
    this.frames = new FrameReader(MALFORMED_FRAME_BYTES, {
      admit: (length) => length <= deps.settings.maxFrameBytes && length <= this.budget.limit,
      hold: (bytes) => this.budget.reserve(bytes),
      release: (bytes) => this.budget.release(bytes),
    });
    this.stream = local ? raw : new TLSSocket(raw, {
      isServer: true,
      secureContext: deps.secureContext(),
      requestCert: true,
      rejectUnauthorized: false,
    });
  }

  get authenticated(): boolean {
    return this.instance !== null;
  }

  /** SHA-256 of the client certificate the connection authenticated with ('' before, and for local ones). */
  get certificateFingerprint(): string {
    return this.fingerprint;
  }

  /** Request bytes this connection holds now. */
  get heldBytes(): number {
    return this.budget.inUse;
  }

  /** True until the TLS handshake has completed: such a connection can be evicted under a flood. */
  get handshaking(): boolean {
    return this.state === ConnectionState.Handshake && !this.closing && !this.closed;
  }

  /** Nothing received from the peer yet. */
  get silent(): boolean {
    return this.raw.bytesRead === 0;
  }

  start(): void {
    const { logger } = this.deps;
    logger.log(Catalogue.connectionAccepted, { peer: this.peer });
    if (this.local) {
      this.stream.on('error', (error) => this.onError(error));
      this.stream.on('end', () => this.onEnd());
      this.stream.on('close', () => this.onClose());
      this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
      this.state = ConnectionState.Connecting;
      this.budget.joinClient(this.deps.clientShares.join(this.clientName));
      this.admittedAs = this.clientName;
      this.connectProcessor(Buffer.alloc(0));
      return;
    }
    this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), this.deps.settings.handshakeTimeout);
    this.stream.once('secure', () => this.onSecure());
    this.stream.on('error', (error) => this.onError(error));
    this.stream.on('end', () => this.onEnd());
    this.stream.on('close', () => this.onClose());
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Ends the connection from our side (shutdown, receive timer, protocol error). */
  terminate(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.deps.logger.log(Catalogue.connectionTerminating, { peer: this.peer });
    this.state = ConnectionState.OutOfService;
    this.stream.end();
    // A peer that does not answer close_notify is not waited for long.
    setTimeout(() => this.stream.destroy(), 2000).unref();
  }

  /** Closed at once to make room under a flood (it had not finished its TLS handshake). */
  evict(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.deps.statistics.handshakesFailed++;
    this.deps.logger.log(Catalogue.nonLunaClient, { peer: this.peer });
    this.settle();
    this.state = ConnectionState.OutOfService;
    this.stream.destroy();
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    if (this.closing || this.closed) return;
    this.deps.statistics.handshakesFailed++;
    this.deps.logger.log(Catalogue.nonLunaClient, { peer: this.peer });
    this.settle();
    if (this.state !== ConnectionState.Handshake) return this.terminate();
    // Before the TLS handshake, as every other failure there: the reason line, then the
    // disconnect line, no `Connection terminating:` (docs/logs.md).
    this.closing = true;
    this.state = ConnectionState.OutOfService;
    this.stream.destroy();
  }

  private onError(error: NodeJS.ErrnoException): void {
    if (this.state === ConnectionState.Handshake) {
      this.handshakeFailed(classifyHandshakeFailure(error));
    } else if (!this.closing) {
      // A reset (or another socket error) once the handshake is done: what the link was doing
      // failed, and the link ends, with the lines of any other end.
      this.deps.logger.log(Catalogue.unexpectedReadResponse, { state: this.state });
      this.lostMidway('reset');
      this.closing = true;
      this.deps.logger.log(Catalogue.connectionTerminating, { peer: this.peer });
    }
    this.stream.destroy();
  }

  /**
   * The peer went (a FIN, or a reset) while the link was in use: the reason line of what was
   * under way. A FIN between requests is the client ending its link gracefully; a reset there
   * is the read of the next request failing.
   */
  private lostMidway(how: 'fin' | 'reset'): void {
    const { logger } = this.deps;
    if (this.state === ConnectionState.Identifying) {
      logger.log(Catalogue.identityReadFailed);
      return;
    }
    if (!this.instance) return;
    const cutShort = this.frames.inCommand || this.frames.pendingBytes > 0;
    // A reset while answers wait for the socket: their write is what failed.
    if (how === 'reset' && (this.processing || this.budget.unsentAnswers > 0)) logger.log(Catalogue.clientWriteFailed);
    else if (cutShort || how === 'reset') logger.log(Catalogue.commandBufferReadFailed);
    else logger.log(Catalogue.clientRequestedTermination, { client: this.clientName, peer: this.peer });
  }

  /**
   * The TLS handshake ended without 'secure': one reason line, once. A peer that went away
   * (reset, or FIN after a partial ClientHello) failed the handshake; one that sent no byte at
   * all (a port scan, a load balancer's TCP health check) never began one: its accept and
   * disconnect lines record it, with no reason line (docs/logs.md).
   */
  private handshakeFailed(kind: HandshakeFailure): void {
    const { logger, statistics } = this.deps;
    this.state = ConnectionState.OutOfService;
    if (kind === 'aborted' && this.silent) return;
    statistics.handshakesFailed++;
    if (kind === 'non-ntls') logger.log(Catalogue.nonLunaClient, { peer: this.peer });
    else if (kind === 'refused') logger.log(Catalogue.secureChannelFailed, { peer: this.peer });
    else logger.log(Catalogue.handshakeFailed);
  }

  private onSecure(): void {
    const { logger } = this.deps;
    logger.log(Catalogue.handshakeResult, { peer: this.peer, result: 'Success' });
    this.state = ConnectionState.Identity;
    void this.checkIdentity();
  }

  private async checkIdentity(): Promise<void> {
    const { logger } = this.deps;
    // The X509Certificate's getters read one field each; getPeerCertificate() would parse them all.
    const certificate = (this.stream as TLSSocket).getPeerX509Certificate();
    if (!certificate) {
      logger.log(Catalogue.clientCertExpected);
      logger.log(Catalogue.clientCredentialsMissing, { peer: this.peer });
      return this.refuse();
    }
    const fingerprint = createHash('sha256').update(certificate.raw).digest('hex');
    const client = this.deps.clientByFingerprint(fingerprint);
    // Registered certificates are pinned by fingerprint, so chain verification reduces to
    // "registered and within its validity"; the handshake itself proved the key is held.
    const now = Date.now();
    const valid = Date.parse(certificate.validFrom) <= now && now <= Date.parse(certificate.validTo);
    if (!client || !valid) {
      logger.log(Catalogue.clientCredentialsRejected, { peer: this.peer });
      return this.refuse();
    }
    // With the ip check on, a client registered without a host cannot be matched: refused.
    if (this.deps.ipCheck && (!client.host || !(await this.hostMatches(client.host)))) {
      logger.log(Catalogue.clientCredentialsUnverified, { peer: this.peer });
      return this.refuse();
    }
    if (this.closed) return;
    if (!this.deps.admitClient(client.name)) {
      this.deps.statistics.connectionsRejected++;
      this.deps.connectionRefused();
      this.settle();
      return this.terminate();
    }
    this.admittedAs = client.name;
    this.budget.joinClient(this.deps.clientShares.join(client.name));
    this.clientName = client.name;
    this.fingerprint = fingerprint;
    logger.log(Catalogue.clientAuthenticated, { client: client.name, peer: this.peer });
    this.endAtExpiry(Date.parse(certificate.validTo));
    this.state = ConnectionState.Identifying;
    if (this.received.length) this.readIdentity();
  }

  /**
   * The certificate is checked at the handshake; a link made just before it expires would live on
   * with it (and an application id's login with the link). At notAfter the link ends as a link
   * refused then would: `Client credentials cannot be verified. Connection terminated`, then
   * `Connection terminating`.
   */
  private endAtExpiry(notAfter: number): void {
    const left = notAfter - Date.now() + 1;
    // setTimeout takes at most 2^31-1 ms (24.8 days): a longer wait is taken in steps.
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      if (this.closing || this.closed) return;
      if (Date.now() <= notAfter) return this.endAtExpiry(notAfter);
      this.deps.logger.log(Catalogue.clientCredentialsRejected, { peer: this.peer });
      this.terminate();
    }, Math.min(Math.max(left, 0), 0x7fffffff)).unref();
  }

  private async hostMatches(host: string): Promise<boolean> {
    if (isIP(host)) return plainAddress(host) === this.address;
    try {
      const addresses = await lookup(host, { all: true });
      return addresses.some((a) => plainAddress(a.address) === this.address);
    } catch {
      return false;
    }
  }

  private refuse(): void {
    this.deps.statistics.authenticationsRefused++;
    this.settle();
    this.terminate();
  }

  private onData(chunk: Buffer): void {
    this.deps.statistics.bytesIn += chunk.length;
    switch (this.state) {
      case ConnectionState.Identity:
        // Bytes sent before the certificate check finished wait for it.
        this.received = Buffer.concat([this.received, chunk]);
        if (this.received.length > 4096) this.stream.destroy();
        return;
      case ConnectionState.Identifying:
        this.received = Buffer.concat([this.received, chunk]);
        this.readIdentity();
        return;
      case ConnectionState.Connecting:
        this.received = Buffer.concat([this.received, chunk]);
        return;
      case ConnectionState.Header:
      case ConnectionState.Command:
      case ConnectionState.Processing:
      case ConnectionState.Reinitializing:
        this.restartReceiveTimer();
        this.frames.push(chunk);
        this.drainFrames();
        return;
      default:
        this.deps.logger.log(Catalogue.unexpectedReadResponse, { state: this.state });
    }
  }

  private readIdentity(): void {
    const { logger } = this.deps;
    let scan;
    try {
      scan = scanIdentity(this.received, 'client');
    } catch {
      logger.log(Catalogue.identityReadFailed);
      logger.log(Catalogue.nonLunaClient, { peer: this.peer });
      this.deps.statistics.handshakesFailed++;
      this.settle();
      return this.terminate();
    }
    if (!scan.done) return;
    this.received = Buffer.alloc(0);
    this.state = ConnectionState.Connecting;
    if (this.write(encodeIdentity('server', this.deps.serverName)) === 'failed') {
      logger.log(Catalogue.identityWriteFailed);
      return this.terminate();
    }
    this.connectProcessor(scan.rest);
  }

  private connectProcessor(rest: Buffer): void {
    const { logger, processor } = this.deps;
    try {
      this.instance = processor.cp_server_connected({
        id: this.id, client: this.clientName, peer: this.peer, fingerprint: this.fingerprint, local: this.local,
        terminate: () => this.terminate(),
      });
    } catch {
      logger.log(Catalogue.serverConnectedFailed, { peer: this.peer });
      this.settle();
      return this.terminate();
    }
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.settle();
    this.deps.statistics.clientsConnected++;
    logger.log(Catalogue.connectionInstanceAdded, { client: this.clientName, peer: this.peer });
    this.state = ConnectionState.Header;
    this.restartReceiveTimer();
    const pending = Buffer.concat([this.received, rest]);
    this.received = Buffer.alloc(0);
    if (pending.length) this.onData(pending);
  }

  private drainFrames(): void {
    if (this.processing || this.closing) return;
    if (!this.versionNegotiated) {
      const head = this.frames.takeByte();
      if (head === null) return;
      const answer = this.instance!.negotiateVersion(head);
      this.write(Buffer.from([answer]));
      this.versionNegotiated = true;
    }
    const frame = this.nextFrame();
    if (frame === MALFORMED) this.malformed();
    else if (frame) void this.serve(frame);
  }

  /** The next complete frame already received, null if none, MALFORMED for a bad header. */
  private nextFrame(): Frame | null | typeof MALFORMED {
    let frame: Frame | null;
    try {
      frame = this.frames.next();
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      return MALFORMED;
    }
    this.state = this.frames.inCommand ? ConnectionState.Command : ConnectionState.Header;
    if (this.frames.inCommand) this.startFrameTimer();
    else this.stopFrameTimer();
    return frame;
  }

  private startFrameTimer(): void {
    const seconds = this.deps.settings.frameTimeout;
    if (seconds <= 0 || this.frameTimer) return;
    this.frameTimer = setTimeout(() => this.onFrameTimer(), seconds * 1000);
  }

  private stopFrameTimer(): void {
    if (!this.frameTimer) return;
    clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  /** A request begun and not finished in time: its bytes go, and so does the link. */
  private onFrameTimer(): void {
    if (this.closing || this.closed) return;
    if (this.processing) {
      // Reading is paused while requests before it are served: that time is not the client's.
      this.frameTimer?.refresh();
      return;
    }
    this.frameTimer = null;
    this.deps.statistics.frameTimeouts++;
    this.deps.logger.log(Catalogue.commandBufferReadFailed);
    this.terminate();
  }

  private malformed(): void {
    this.deps.statistics.malformedRequests++;
    this.deps.logger.log(Catalogue.requestHeaderMalformed, { peer: this.peer });
    this.terminate();
  }

  /**
   * Answers, in order, every frame already received — pipelined requests arrive together — and
   * writes their answers in one go: one TLS record and one system call for the batch instead of
   * one per answer. Reading pauses meanwhile (back-pressure).
   */
  private async serve(first: Frame): Promise<void> {
    this.processing = true;
    this.stream.pause();
    const answers: Buffer[] = [];
    let batched = 0;
    let next: Frame | null | typeof MALFORMED = first;
    while (next && next !== MALFORMED) {
      const answer = await this.answer(next);
      if (answer === null) {
        this.processing = false;
        return this.terminate();
      }
      answers.push(answer);
      batched += answer.length;
      if (batched >= BATCH_FLUSH_BYTES) {
        if (!(await this.flush(answers.splice(0)))) return;
        batched = 0;
      }
      next = this.closing ? null : this.nextFrame();
    }
    this.processing = false;
    if (this.closed) return;
    // Answers to the requests before a malformed header still go out, then the link ends.
    if (answers.length && !this.closing && !(await this.flush(answers))) return;
    if (next === MALFORMED) return this.malformed();
    if (this.closing) return;
    this.state = ConnectionState.Header;
    this.stream.resume();
    this.drainFrames();
  }

  /** One request's answer as frame bytes, or null when the processor failed it. */
  private async answer(frame: Frame): Promise<Buffer | null> {
    const { logger, statistics } = this.deps;
    this.state = ConnectionState.Processing;
    statistics.requests++;
    let response: Frame;
    try {
      // Refused when its bytes could not be held, or while unsent answers hold more than the budget allows.
      const overdrawn = !frame.refused && this.budget.overdrawn;
      if (overdrawn) this.budget.release(frame.options.length + frame.body.length);
      if (frame.refused || overdrawn) {
        statistics.errors++;
        logger.log(Catalogue.commandBufferAllocFailed, { peer: this.peer });
        response = this.instance!.refuse(frame);
      } else {
        response = await this.instance!.process(frame);
        this.budget.release(frame.options.length + frame.body.length);
      }
    } catch {
      statistics.errors++;
      logger.log(frame.body.length === 0 ? Catalogue.forwardDatalessFailed : Catalogue.forwardToProcessorFailed, { peer: this.peer });
      return null;
    }
    this.state = ConnectionState.Reinitializing;
    return serializeFrame({ ...response, callCode: frame.callCode });
  }

  /** Writes answers; false when the link is gone. Waits for 'drain' when the peer reads slowly. */
  private async flush(answers: Buffer[]): Promise<boolean> {
    const written = this.write(answers.length === 1 ? answers[0]! : Buffer.concat(answers));
    if (written === 'failed') {
      this.terminate();
      return false;
    }
    if (written === 'queued') {
      await new Promise<void>((resolve) => {
        const done = () => { this.stream.off('drain', done); this.stream.off('close', done); resolve(); };
        this.stream.on('drain', done);
        this.stream.on('close', done);
      });
    }
    return !this.closed;
  }

  /** 'queued': accepted, but wait for 'drain' before writing more (back-pressure). */
  private write(bytes: Buffer): 'flushed' | 'queued' | 'failed' {
    if (this.stream.destroyed || this.stream.writableEnded) {
      this.deps.logger.log(Catalogue.clientWriteFailed);
      return 'failed';
    }
    this.deps.statistics.bytesOut += bytes.length;
    // Held until handed to the socket: a peer that reads nothing cannot make the daemon hold answers without bound.
    this.budget.charge(bytes.length);
    return this.stream.write(bytes, () => this.budget.discharge(bytes.length)) ? 'flushed' : 'queued';
  }

  private restartReceiveTimer(): void {
    const seconds = this.deps.settings.receiveTimeout;
    if (seconds <= 0) return;
    if (this.receiveTimer) {
      this.receiveTimer.refresh();
      return;
    }
    this.receiveTimer = setTimeout(() => this.onReceiveTimer(), seconds * 1000);
  }

  private onReceiveTimer(): void {
    if (this.closing || this.closed) return;
    if (this.processing) {
      // Time spent by the HSM is not client silence.
      this.receiveTimer?.refresh();
      return;
    }
    this.deps.statistics.receiveTimeouts++;
    this.deps.logger.log(Catalogue.receiveTimerTerminate, { client: this.clientName, peer: this.peer });
    this.terminate();
  }

  private onEnd(): void {
    // The peer's FIN before the handshake completed: OpenSSL reports no error for it.
    if (this.state === ConnectionState.Handshake && !this.closing) this.handshakeFailed('aborted');
    // A FIN in the middle of a request is a read that failed, not a client ending its link gracefully.
    else if (!this.closing) this.lostMidway('fin');
    if (!this.closing) {
      this.closing = true;
      this.deps.logger.log(Catalogue.connectionTerminating, { peer: this.peer });
      this.stream.end();
    }
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.deps.onSettled(this);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.state = ConnectionState.OutOfService;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.receiveTimer) clearTimeout(this.receiveTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.stopFrameTimer();
    this.budget.releaseAll();
    if (this.admittedAs !== null) {
      this.deps.clientShares.leave(this.admittedAs);
      if (!this.local) this.deps.leaveClient(this.admittedAs);
      this.admittedAs = null;
    }
    this.settle();
    const { logger } = this.deps;
    logger.log(Catalogue.clientDisconnected, { client: this.clientName, peer: this.peer });
    if (this.instance) {
      this.instance.close();
      this.instance = null;
      this.deps.statistics.clientsConnected--;
      logger.log(Catalogue.connectionInstanceRemoved, { client: this.clientName, peer: this.peer });
    }
    this.deps.onClosed(this);
  }
}
