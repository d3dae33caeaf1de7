// The main process's side of a datapath worker's channel: the worker's connections get real
// processor instances here, their requests are processed in order per connection, and the
// answers go back. Connection ids are the daemon's own (unique across workers), so application
// ids, statistics and logs see one daemon.
import type { Frame } from '../protocol/frame.js';
import {
  ChannelKind, ChannelReader, ChannelWriter, framePayload, readFramePayload, type ChannelMessage, type ConnectionOpen,
} from './channel.js';
import type { CommandProcessorModule, ProcessorInstance } from '../processor/contract.js';

const EMPTY = Buffer.alloc(0);

interface Hosted {
  instance: ProcessorInstance;
  /** Who the link is, as its Open said: a link lost with its worker is named by them. */
  client: string;
  peer: string;
  /** The last request's answer: the next is processed after it, so answers keep their order. */
  queue: Promise<unknown>;
}

export interface WorkerStream {
  write(bytes: Buffer): boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  destroyed: boolean;
  readableEnded: boolean;
}

/** A link of the worker as its lines tell it, from its accept line to its disconnect line. */
interface LoggedLink {
  /** Its address until its client is known (connection.ts names an unidentified link so). */
  client: string;
  /** Its `Connection terminating` line is written. */
  terminating: boolean;
}

export class ProcessorHost {
  private readonly hosted = new Map<number, Hosted>();
  /** The worker's open links by peer, from the lines it sends: those still in their handshake or identity exchange are not hosted yet. */
  private readonly logged = new Map<string, LoggedLink>();
  private readonly reader = new ChannelReader();
  private readonly writer: ChannelWriter;

  /**
   * `connectionId(local)` gives the daemon-wide id of the worker's connection `local`.
   */
  constructor(
    private readonly processor: CommandProcessorModule,
    stream: WorkerStream,
    private readonly connectionId: (local: number) => number,
    private readonly onLog: (id: string, params: Record<string, string | number>) => void,
  ) {
    this.writer = new ChannelWriter(stream);
    stream.on('data', (chunk: Buffer) => {
      for (const message of this.reader.push(chunk)) this.receive(message);
    });
    // A worker that dies breaks its pipe: its exit (worker-pool.ts) is what ends its connections.
    stream.on('error', () => undefined);
  }

  /** Connections served for this worker now. */
  get connections(): number {
    return this.hosted.size;
  }

  private receive(message: ChannelMessage): void {
    const local = message.connection;
    if (message.kind === ChannelKind.Log) {
      const { id, params } = JSON.parse(message.payload.toString('utf8')) as { id: string; params: Record<string, string | number> };
      this.follow(id, params);
      this.onLog(id, params);
      return;
    }
    if (message.kind === ChannelKind.Open) {
      const open = JSON.parse(message.payload.toString('utf8')) as ConnectionOpen;
      const instance = this.processor.cp_server_connected({
        id: this.connectionId(local), client: open.client, peer: open.peer, fingerprint: open.fingerprint, local: open.local,
        terminate: () => this.writer.send(ChannelKind.Terminate, local),
      });
      this.hosted.set(local, { instance, client: open.client, peer: open.peer, queue: Promise.resolve() });
      return;
    }
    const hosted = this.hosted.get(local);
    if (!hosted) return;
    switch (message.kind) {
      case ChannelKind.Version:
        hosted.instance.negotiateVersion(message.payload.readUInt8(0));
        break;
      case ChannelKind.Request: {
        const { callCode, body } = readFramePayload(message.payload);
        const request: Frame = { callCode, options: EMPTY, body: Buffer.from(body) };
        hosted.queue = hosted.queue.then(() => hosted.instance.process(request)).then(
          (answer) => this.writer.send(ChannelKind.Answer, local, framePayload(answer.callCode, answer.body)),
          // A processor that throws outside PKCS#11 ends the connection, as the datapath does in-process.
          () => this.writer.send(ChannelKind.Terminate, local),
        );
        break;
      }
      case ChannelKind.Refused: {
        const { callCode, body } = readFramePayload(message.payload);
        const head = Buffer.from(body);
        // After the requests before it, as in the worker's own order.
        hosted.queue = hosted.queue.then(() => {
          hosted.instance.refuse({ callCode, options: EMPTY, body: EMPTY, refused: { declaredBytes: 0, head } });
        });
        break;
      }
      case ChannelKind.Close:
        this.hosted.delete(local);
        hosted.instance.close();
        break;
    }
  }

  /**
   * The worker is gone: each of its links that had not ended ends here, with the lines a link
   * that ends writes (src/datapath/connection.ts, terminate() then onClose()), in the same order
   * (the worker that would have written them cannot): links in their handshake or identity
   * exchange too, named as far as they were known. Instances close (their sessions end). Called
   * once the worker's channel has ended, so every line it sent has been read.
   */
  lost(): void {
    const instances = new Map([...this.hosted.values()].map((h) => [h.peer, h]));
    this.hosted.clear();
    const links = [...this.logged];
    this.logged.clear();
    for (const [peer, link] of links) {
      const hosted = instances.get(peer);
      instances.delete(peer);
      const client = hosted?.client ?? link.client;
      if (!link.terminating) this.onLog('connectionTerminating', { peer });
      this.onLog('clientDisconnected', { client, peer });
      if (hosted) this.removeInstance(hosted);
    }
    // Hosted links whose disconnect line the worker wrote before it died: their instance still closes.
    for (const hosted of instances.values()) this.removeInstance(hosted);
  }

  private removeInstance({ instance, client, peer }: Hosted): void {
    instance.close();
    this.onLog('connectionInstanceRemoved', { client, peer });
  }

  /** Follows a link's lines: accepted, identified, terminating, disconnected. */
  private follow(id: string, params: Record<string, string | number>): void {
    const peer = String(params.peer);
    switch (id) {
      case 'connectionAccepted':
        this.logged.set(peer, { client: peer.slice(0, peer.lastIndexOf('/')), terminating: false });
        break;
      case 'clientAuthenticated': {
        const link = this.logged.get(peer);
        if (link) link.client = String(params.client);
        break;
      }
      case 'connectionTerminating': {
        const link = this.logged.get(peer);
        if (link) link.terminating = true;
        break;
      }
      case 'clientDisconnected':
        this.logged.delete(peer);
        break;
    }
  }
}
