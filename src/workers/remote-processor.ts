// The command processor as a datapath worker sees it: each connection's processor instance is a
// proxy that sends the requests to the daemon's main process over the worker's channel and
// delivers the answers (src/workers/channel.ts). The main process runs the real processor (one
// token model, one HSM, one log), so every worker serves the same service.
import { REFUSED_HEAD_BYTES, type Frame } from '../protocol/frame.js';
import { encodeErrorResponse, negotiateVersion } from '../protocol/p11kit/index.js';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { ChannelKind, framePayload, readFramePayload, type ChannelMessage, type ChannelWriter, type ConnectionOpen } from './channel.js';
import type { CommandProcessorModule, ConnectionInfo, ProcessorInstance } from '../processor/contract.js';

const EMPTY = Buffer.alloc(0);

/** A request sent and not answered yet. */
interface Waiting {
  resolve(frame: Frame): void;
  reject(error: Error): void;
}

class RemoteInstance implements ProcessorInstance {
  /** Answers come back in the order the requests went (the main process answers each connection in order). */
  private readonly waiting: Waiting[] = [];
  private closed = false;

  constructor(readonly connection: ConnectionInfo, private readonly writer: ChannelWriter, private readonly onClose: () => void) {
    const open: ConnectionOpen = { client: connection.client, peer: connection.peer, fingerprint: connection.fingerprint, local: connection.local };
    writer.send(ChannelKind.Open, connection.id, Buffer.from(JSON.stringify(open)));
  }

  /** The processor's rule (the lower of the two), told to the main process's instance too. */
  negotiateVersion(clientVersion: number): number {
    this.writer.send(ChannelKind.Version, this.connection.id, Buffer.from([clientVersion & 0xff]));
    return negotiateVersion(clientVersion);
  }

  process(request: Frame): Promise<Frame> {
    if (this.closed) return Promise.reject(new Pkcs11Error(CKR.DEVICE_REMOVED, 'the connection is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      const payload = Buffer.allocUnsafe(4 + request.body.length);
      payload.writeUInt32BE(request.callCode >>> 0, 0);
      request.body.copy(payload, 4);
      this.writer.send(ChannelKind.Request, this.connection.id, payload);
    });
  }

  /** Answered here at once (no memory for it); the main process counts it. */
  refuse(request: Frame): Frame {
    // The head names the call and its session, whose operation the main process ends.
    this.writer.send(ChannelKind.Refused, this.connection.id, framePayload(request.callCode, (request.refused?.head ?? request.body).subarray(0, REFUSED_HEAD_BYTES)));
    return { callCode: request.callCode, options: EMPTY, body: encodeErrorResponse(CKR.HOST_MEMORY) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.send(ChannelKind.Close, this.connection.id);
    // An Error costs a stack trace: made only when a request is waiting.
    if (this.waiting.length) this.fail(new Pkcs11Error(CKR.DEVICE_REMOVED, 'the connection is closed'));
    this.onClose();
  }

  answer(payload: Buffer): void {
    const { callCode, body } = readFramePayload(payload);
    this.waiting.shift()?.resolve({ callCode, options: EMPTY, body });
  }

  fail(error: Error): void {
    for (const waiting of this.waiting.splice(0)) waiting.reject(error);
  }
}

export class RemoteProcessor implements Pick<CommandProcessorModule, 'cp_server_connected'> {
  private readonly instances = new Map<number, RemoteInstance>();

  constructor(private readonly writer: ChannelWriter) {}

  cp_server_connected(connection: ConnectionInfo): ProcessorInstance {
    const instance = new RemoteInstance(connection, this.writer, () => this.instances.delete(connection.id));
    this.instances.set(connection.id, instance);
    return instance;
  }

  /** A message from the main process. */
  deliver(message: ChannelMessage): void {
    const instance = this.instances.get(message.connection);
    if (!instance) return;
    if (message.kind === ChannelKind.Answer) instance.answer(message.payload);
    else if (message.kind === ChannelKind.Terminate) instance.connection.terminate();
  }

  /** The main process is gone: nothing in flight will be answered. */
  lost(): void {
    for (const instance of this.instances.values()) instance.fail(new Pkcs11Error(CKR.DEVICE_ERROR, 'the daemon\'s main process is gone'));
  }
}
