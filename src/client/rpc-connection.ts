// One server, one link, PKCS#11 calls over p11-kit RPC. The link is opened on the first call and
// after a loss on the next one; calls are pipelined on it (the server answers in order). A lost
// link fails the calls in flight with its LinkError; a call unanswered within the receive
// timeout ends the link and fails every call in flight with NTLS_ERR_TIMEOUT.
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import {
  P11KIT_HANDSHAKE, decodeResponse, encodeRequest, request,
  type RequestArgs, type RequestCallName, type ResponseArgs,
} from '../protocol/p11kit/index.js';
import { LinkError, openLink, type Link, type LinkOptions } from './link.js';

export interface ServerEndpoint {
  /** The name the client configuration knows the server by. */
  name: string;
  host: string;
  port: number;
  /** The server's registered certificate, PEM: the only one accepted. */
  certificatePem: string;
}

export interface ClientCredentials {
  certificatePem: string;
  keyPem: string;
  /** Name sent in the identity exchange. */
  clientName: string;
}

export interface ConnectionSettings {
  /** Link set-up and per-call answer timeout, ms (default 30 s). 0: no per-call timeout. */
  timeoutMs?: number;
  /** TCP keepalive on the link (default on, first probe after 60 s idle). */
  tcpKeepalive?: { enabled: boolean; idleSeconds: number };
  /**
   * Ask the server to keep handles to private objects valid across a logout (NTLS_KeepObjectHandles),
   * on every link: the HA client's member links, whose handles move between members.
   */
  keepObjectHandles?: boolean;
}

/**
 * p11-kit protocol version offered: 0. Version 0 framing carries every mechanism parameter the
 * codec knows (GCM, CTR, CBC IVs, ECDH), so nothing is lost by not offering 2.
 */
export const CLIENT_PROTOCOL_VERSION = 0;

/** What Pkcs11Remote calls through: one server (RpcConnection) or an HA group (HaConnection). */
export interface CallChannel {
  readonly endpoint: { readonly name: string };
  call<N extends RequestCallName>(name: N, args: RequestArgs<N>): Promise<ResponseArgs<N>>;
  close(): Promise<void>;
}

export class RpcConnection implements CallChannel {
  private link: Link | null = null;
  private opening: Promise<Link> | null = null;
  private closed = false;
  private watchdog: { link: Link; timer: NodeJS.Timeout } | null = null;
  private lastProgress = 0;
  /** Counts links opened; handles from an earlier link are invalid on a later one. */
  generation = 0;

  constructor(readonly endpoint: ServerEndpoint, private readonly credentials: ClientCredentials, private readonly settings: ConnectionSettings = {}) {}

  get timeoutMs(): number {
    return this.settings.timeoutMs ?? 30_000;
  }

  /** True while a link is up. */
  get connected(): boolean {
    return this.link !== null;
  }

  /** Calls sent on the current link and not answered yet. */
  get inFlight(): number {
    return this.link?.inFlight ?? 0;
  }

  /** Opens the link now (calls do it themselves when needed). */
  async connect(): Promise<void> {
    await this.currentLink();
  }

  /** One PKCS#11 call: its answer's fields, or a Pkcs11Error (CKR_...) or LinkError. */
  async call<N extends RequestCallName>(name: N, args: RequestArgs<N>): Promise<ResponseArgs<N>> {
    const link = await this.currentLink();
    return this.send(link, name, args);
  }

  async close(): Promise<void> {
    this.closed = true;
    const link = this.link ?? (await this.opening?.catch(() => null));
    this.link = null;
    if (link) await link.close();
  }

  private send<N extends RequestCallName>(link: Link, name: N, args: RequestArgs<N>): Promise<ResponseArgs<N>> {
    const encoded = encodeRequest(request(name, args), { version: link.protocolVersion });
    if (!encoded.ok) return Promise.reject(new Pkcs11Error(encoded.error.rv, `${name}: ${encoded.error.message}`));
    // The clock runs from the first call sent to an idle link, and restarts at each answer.
    if (link.inFlight === 0) this.lastProgress = Date.now();
    const answer = link.request(encoded.value);
    this.watch(link);
    return answer.then((frame) => {
      this.lastProgress = Date.now();
      const decoded = decodeResponse(frame.body, name, { version: link.protocolVersion });
      if (!decoded.ok) throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: unreadable answer: ${decoded.error.message}`);
      if (decoded.value.call === 'ERROR') throw new Pkcs11Error(decoded.value.args.rv, name);
      return decoded.value.args as ResponseArgs<N>;
    });
  }

  /**
   * The receive timeout: one timer per link, not one per call. It fires when calls are waiting
   * and the server has answered none of them for timeoutMs, so a long queue of pipelined calls
   * that the server works through steadily never times out, and a silent server always does.
   */
  private watch(link: Link): void {
    const timeoutMs = this.timeoutMs;
    if (timeoutMs <= 0 || this.watchdog?.link === link) return;
    if (this.watchdog) clearTimeout(this.watchdog.timer);
    const arm = (ms: number) => {
      const timer = setTimeout(check, ms);
      timer.unref();
      this.watchdog = { link, timer };
    };
    const check = () => {
      this.watchdog = null;
      if (link.inFlight === 0 || link.socket.destroyed) return;
      const silent = Date.now() - this.lastProgress;
      if (silent < timeoutMs) return arm(timeoutMs - silent);
      link.abort(new LinkError('NTLS_ERR_TIMEOUT', `${this.endpoint.name} (${this.endpoint.host}:${this.endpoint.port}) answered none of ${link.inFlight} call(s) within ${timeoutMs} ms`, { stage: 'open' }));
    };
    arm(timeoutMs);
  }

  private currentLink(): Promise<Link> {
    if (this.closed) return Promise.reject(new LinkError('NTLS_ERR_LINK_CLOSED', 'the client was closed'));
    if (this.link) return Promise.resolve(this.link);
    this.opening ??= this.open().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async open(): Promise<Link> {
    const options: LinkOptions = {
      host: this.endpoint.host,
      port: this.endpoint.port,
      serverCertificatePem: this.endpoint.certificatePem,
      certificatePem: this.credentials.certificatePem,
      keyPem: this.credentials.keyPem,
      clientName: this.credentials.clientName,
      protocolVersion: CLIENT_PROTOCOL_VERSION,
      timeoutMs: this.timeoutMs > 0 ? this.timeoutMs : 30_000,
    };
    const link = await openLink(options);
    const keepalive = this.settings.tcpKeepalive ?? { enabled: true, idleSeconds: 60 };
    link.socket.setKeepAlive(keepalive.enabled, keepalive.idleSeconds * 1000);
    link.socket.once('close', () => {
      if (this.link === link) this.link = null;
    });
    try {
      // What p11-kit's client sends first; the server's application starts here.
      await this.send(link, 'C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: Buffer.from([0]) });
      if (this.settings.keepObjectHandles) await this.send(link, 'NTLS_KeepObjectHandles', {});
    } catch (error) {
      link.abort(new LinkError('NTLS_ERR_LINK_CLOSED', 'C_Initialize failed', { stage: 'version' }));
      throw error;
    }
    if (link.socket.destroyed) throw new LinkError('NTLS_ERR_LINK_CLOSED', 'the server closed the link during set-up', { stage: 'version' });
    if (this.closed) {
      await link.close();
      throw new LinkError('NTLS_ERR_LINK_CLOSED', 'the client was closed');
    }
    this.generation++;
    this.link = link;
    return link;
  }
}
