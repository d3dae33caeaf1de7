// The bridge for stock PKCS#11 programs: p11-kit's client module speaks the p11-kit RPC
// protocol to its "remote" (a command on stdin/stdout, or a unix socket); the relay opens the
// mutual-TLS link to ntls, performs the identity exchange, then passes bytes both ways. Requests
// go to the server a whole frame per write (one TLS record), answers come back as they arrive.
import { createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex, Readable, Writable } from 'node:stream';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { FrameReader, MALFORMED_FRAME_BYTES, serializeFrame, type Frame } from '../protocol/frame.js';
import {
  CALL_ID, decodeRequest, decodeResponse, encodeErrorResponse, encodeResponse, negotiateVersion, peekCallId, type P11KitResponse,
} from '../protocol/p11kit/index.js';
import { AttributeReadAhead } from './read-ahead.js';
import { checkRelaySocketPath, listenRelaySocket } from './relay-socket.js';
import type { HaConnection } from './ha-connection.js';
import { LinkError, openIdentifiedLink, type IdentifiedLink, type LinkOptions } from './link.js';

/** The largest request a program may send (the daemon's maxFrameBytes can be at most this). */
const MAX_LOCAL_FRAME_BYTES = 64 * 1024 * 1024;
/** How long a program whose link could not be made may stay silent before its socket is ended. */
const UNLINKED_IDLE_MS = 3000;
/**
 * The options of the answers a relay makes up once its link is lost (CKR_DEVICE_ERROR): p11-kit's
 * client ignores them; ntls's own module reads them as the link's end and links again.
 */
export const LINK_LOST_OPTIONS = Buffer.from('ntls:link-lost');

export interface RelayHooks {
  /** Called with each link's TLS socket once it is open (tests read its socket options). */
  onLink?(socket: TLSSocket): void;
  /** False: every call goes to the server (no attribute read-ahead, read-ahead.ts). Default true. */
  readAhead?: boolean;
  /**
   * Called once per link when the server answers C_GetSlotList with no slot: the client links,
   * but no partition is assigned to it, which stock tools show only as "No slots".
   */
  onNoSlots?: () => void;
  /**
   * Called once when a link ends under a program still connected (the server stopped or closed
   * it, or answered none of the calls in flight within `answerTimeoutMs`): the program's calls
   * then answer CKR_DEVICE_ERROR until it closes its side (p11-kit's client links anew at its
   * next C_Initialize).
   */
  onLinkLost?: (why: LinkLoss) => void;
  /** How long calls in flight wait for the server's next answer before the link is given up; 0 or none: no limit. */
  answerTimeoutMs?: number;
}

export type LinkLoss = 'closed' | 'timeout';

/**
 * Where the relay's link options come from: fixed values, or its configuration (client.json, or
 * the files its flags name), read again when a link cannot be set up (the server presents a
 * certificate other than the pinned one, refuses this client, cannot be reached), so that what
 * was changed since it started serves the next connection without restarting the relay: a
 * server certificate accepted after `ntls cert regen` (`add-server --replace`, or a new
 * --server-cert file), a new client certificate (`create-cert --force`), a new address.
 */
export interface LinkSource {
  current(): LinkOptions;
  /** Reads the configuration again; throws what reading it throws. */
  reload(): LinkOptions;
}

function sourceOf(options: LinkOptions | LinkSource): LinkSource {
  return 'current' in options ? options : { current: () => options, reload: () => options };
}

function sameLink(a: LinkOptions, b: LinkOptions): boolean {
  return a.host === b.host && a.port === b.port && a.serverCertificatePem === b.serverCertificatePem
    && a.certificatePem === b.certificatePem && a.keyPem === b.keyPem && a.clientName === b.clientName;
}

/** Links with the current options; when set-up fails, once more if the configuration changed. */
async function linkFrom(source: LinkSource): Promise<IdentifiedLink> {
  const options = source.current();
  try {
    return await openIdentifiedLink(options);
  } catch (error) {
    if (!(error instanceof LinkError)) throw error;
    const fresh = source.reload();
    if (sameLink(fresh, options)) throw error;
    return openIdentifiedLink(fresh);
  }
}

/** Joins a local stream pair to a fresh link; resolves when either side ends. */
export async function relayStreams(input: Readable, output: Writable, options: LinkOptions | LinkSource, hooks: RelayHooks = {}): Promise<void> {
  const { socket, initial } = await linkFrom(sourceOf(options));
  hooks.onLink?.(socket);
  // The relay lasts as long as the program's side: a link lost before answers the program's
  // calls with CKR_DEVICE_ERROR (p11-kit's client, its remote gone, dies of SIGPIPE).
  const ended = new Promise<void>((resolve) => {
    input.once('end', resolve);
    input.once('close', resolve);
  });
  relayFrames(input, output, socket, initial, hooks);
  socket.resume();
  await ended;
  socket.destroy();
}

/**
 * Serves a unix socket (owner-only); each connection on it gets its own link to ntls, so each
 * PKCS#11 program using P11_KIT_SERVER_ADDRESS=unix:path=... has its own sessions and login.
 */
export async function serveRelay(path: string, options: LinkOptions | LinkSource, onError: (error: Error) => void, hooks: RelayHooks = {}): Promise<Server> {
  const source = sourceOf(options);
  await checkRelaySocketPath(path);
  const server = createServer((local: Socket) => {
    // A program speaks first (p11-kit's version byte): a connection that closes without a byte
    // (another relay probing whether this path is live) costs no link and no log line.
    local.on('error', () => local.destroy());
    local.once('close', () => local.off('data', onFirstBytes));
    const onFirstBytes = (chunk: Buffer) => {
      local.pause();
      local.unshift(chunk);
      linkAndJoin(local);
    };
    local.once('data', onFirstBytes);
  });
  const linkAndJoin = (local: Socket) => {
    linkFrom(source).then(({ socket, initial }) => {
      hooks.onLink?.(socket);
      relayFrames(local, local, socket, initial, hooks);
      // The program's side ends the link; the link's end leaves the program answered (relayFrames).
      local.once('close', () => socket.destroy());
      local.on('error', () => local.destroy());
      local.resume();
      socket.resume();
    }, (error: Error) => {
      onError(error);
      answerUnlinked(local);
    });
  };
  await listenRelaySocket(server, path);
  return server;
}

/** A reader of a program's requests: one over MAX_LOCAL_FRAME_BYTES is skipped and delivered `refused`. */
function programRequests(): FrameReader {
  return new FrameReader(MALFORMED_FRAME_BYTES, (length) => length <= MAX_LOCAL_FRAME_BYTES);
}

/** The answer to a request too large to pass on, as the daemon answers one over its own limit. */
function refusedAnswer(frame: Frame): Frame {
  return { callCode: frame.callCode, options: Buffer.alloc(0), body: encodeErrorResponse(CKR.HOST_MEMORY) };
}

/**
 * Answers a program whose link could not be made, in p11-kit RPC itself: the version byte, then
 * CKR_DEVICE_ERROR for every call, as `p11-kit server` does for a module whose C_Initialize
 * fails. Closing the socket unread instead kills programs with SIGPIPE: p11-kit's client writes
 * without MSG_NOSIGNAL. The socket ends when the program closes it or stays silent too long.
 */
function answerUnlinked(local: Socket): void {
  const frames = programRequests();
  const errorBody = encodeErrorResponse(CKR.DEVICE_ERROR);
  const noOptions = Buffer.alloc(0);
  let idle: NodeJS.Timeout | undefined;
  const quiet = () => {
    local.end();
    // A program that neither reads nor closes does not keep the socket.
    setTimeout(() => local.destroy(), UNLINKED_IDLE_MS).unref();
  };
  const rearm = () => {
    clearTimeout(idle);
    idle = setTimeout(quiet, UNLINKED_IDLE_MS);
    idle.unref();
  };
  local.on('error', () => local.destroy());
  local.once('close', () => clearTimeout(idle));
  // A stream no p11-kit client sends is destroyed: nothing to answer.
  const answer = versionThenFrames(frames, local, (head) => local.write(Buffer.from([negotiateVersion(head)])),
    (frame) => local.write(serializeFrame({ callCode: frame.callCode, options: noOptions, body: errorBody })), () => local.destroy());
  local.on('data', (chunk: Buffer) => {
    rearm();
    answer(chunk);
  });
  rearm();
  local.resume();
}

/** Whether `body` is a successful C_GetSlotList answer that lists (or counts) no slot. */
export function answersNoSlots(body: Buffer): boolean {
  if (peekCallId(body) !== CALL_ID.C_GetSlotList) return false;
  const decoded = decodeResponse(body, 'C_GetSlotList');
  return decoded.ok && decoded.value.call === 'C_GetSlotList' && decoded.value.args.slotList.length === 0;
}

/**
 * Relays whole frames both ways between a program (p11-kit's client, or ntls's module) and its
 * link, with attribute read-ahead unless `hooks.readAhead` is false. p11-kit's client may have
 * calls of several threads in flight on one socket (answers are matched by call code), so
 * requests are sent on as they come; read-ahead only plans a call when nothing else is in
 * flight, and any call that overlaps another ends the burst. Frames the server sends unasked are
 * passed on. When the link ends under the program (or answers nothing within
 * `hooks.answerTimeoutMs` while calls wait), the calls in flight and every later one answer
 * CKR_DEVICE_ERROR until the program closes its side.
 */
export function relayFrames(input: Readable, output: Writable, link: Duplex, initial: Buffer, hooks: RelayHooks = {}): void {
  const requests = programRequests();
  const answers = new FrameReader(MAX_LOCAL_FRAME_BYTES);
  const readAhead = hooks.readAhead === false ? null : new AttributeReadAhead();
  let offered: number | null = null;
  let version: number | null = null;
  let lost = false;
  let loss: LinkLoss = 'closed';
  const inFlight: number[] = [];
  let fetching: { callCode: number; request: Frame; then: (answer: Buffer) => Buffer | null } | null = null;
  const broken = () => {
    input.destroy();
    link.destroy();
  };
  const linkWriter = pausingWriter(link, input);
  const programWriter = pausingWriter(output, link);
  const watchdog = answerWatchdog(hooks.answerTimeoutMs ?? 0, () => inFlight.length > 0, () => {
    loss = 'timeout';
    link.destroy();
  });
  const toLink = (frame: Frame) => {
    // A call sent into silence counts from now, not from the last answer.
    if (inFlight.length === 0) watchdog.heard();
    inFlight.push(frame.callCode);
    watchdog.sent();
    linkWriter(serializeFrame(frame));
  };
  const toProgram = (frame: Frame) => programWriter(serializeFrame(frame));
  const lostAnswer = (callCode: number) => toProgram({ callCode, options: LINK_LOST_OPTIONS, body: encodeErrorResponse(CKR.DEVICE_ERROR) });
  const serve = (frame: Frame) => {
    if (lost) return lostAnswer(frame.callCode);
    if (frame.refused) return toProgram(refusedAnswer(frame));
    if (inFlight.length > 0 || !readAhead) {
      readAhead?.interrupt();
      toLink(frame);
      return;
    }
    const plan = readAhead.plan(frame.body, version ?? 0);
    if (plan.kind === 'answer') toProgram({ callCode: frame.callCode, options: Buffer.alloc(0), body: plan.body });
    else if (plan.kind === 'fetch') {
      fetching = { callCode: frame.callCode, request: frame, then: plan.then };
      toLink({ callCode: frame.callCode, options: frame.options, body: plan.body });
    } else toLink(frame);
  };
  let noSlotsTold = false;
  const answered = (frame: Frame) => {
    watchdog.heard();
    const waiting = inFlight.indexOf(frame.callCode);
    if (waiting >= 0) inFlight.splice(waiting, 1);
    if (hooks.onNoSlots && !noSlotsTold && answersNoSlots(frame.body)) {
      noSlotsTold = true;
      hooks.onNoSlots();
    }
    const fetched = fetching;
    if (fetched && frame.callCode === fetched.callCode) {
      fetching = null;
      const body = fetched.then(frame.body);
      if (body) toProgram({ callCode: frame.callCode, options: frame.options, body });
      else toLink(fetched.request);
    } else toProgram(frame);
  };
  let programGone = false;
  const gone = () => { programGone = true; };
  input.once('end', gone);
  input.once('close', gone);
  const linkLost = () => {
    watchdog.stop();
    // The program closed its side first (and the link with it): nobody to answer or tell.
    if (lost || programGone || input.destroyed) return;
    lost = true;
    output.cork();
    // A program still waiting for the version gets one, so that its calls can be answered.
    if (version === null && offered !== null) {
      version = negotiateVersion(offered);
      output.write(Buffer.from([version]));
    }
    for (const callCode of inFlight.splice(0)) lostAnswer(callCode);
    fetching = null;
    output.uncork();
    hooks.onLinkLost?.(loss);
  };
  input.on('data', versionThenFrames(requests, link, (head) => {
    offered = head;
    if (lost) {
      version = negotiateVersion(head);
      output.write(Buffer.from([version]));
    } else link.write(Buffer.from([head]));
  }, serve, broken));
  const fromLink = versionThenFrames(answers, output, (head) => {
    version = head;
    output.write(Buffer.from([head]));
  }, answered, broken);
  if (initial.length) fromLink(initial);
  link.on('data', fromLink);
  link.on('error', () => link.destroy());
  link.once('close', linkLost);
}

/**
 * Gives a link up when calls wait and the server has answered none of them for `timeoutMs`,
 * counted from the first call sent into silence or from the last answer, whichever is later.
 */
function answerWatchdog(timeoutMs: number, waiting: () => boolean, expired: () => void): { sent(): void; heard(): void; stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let lastHeard = 0;
  const check = () => {
    timer = null;
    if (!waiting()) return;
    const silent = Date.now() - lastHeard;
    if (silent >= timeoutMs) return expired();
    timer = setTimeout(check, timeoutMs - silent);
  };
  return {
    sent() {
      if (timeoutMs <= 0 || timer) return;
      timer = setTimeout(check, timeoutMs);
    },
    heard() {
      lastHeard = Date.now();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

/**
 * The handler of one direction's chunks: a p11-kit stream is a version byte, then frames. The
 * version byte goes to `onVersion` once, each whole frame to `onFrame`; what they write to `to`
 * leaves in one write per chunk (corked). A malformed stream calls `broken`.
 */
function versionThenFrames(reader: FrameReader, to: Writable, onVersion: (head: number) => void, onFrame: (frame: Frame) => void, broken: () => void): (chunk: Buffer) => void {
  let versionSeen = false;
  return (chunk) => {
    to.cork();
    try {
      reader.push(chunk);
      if (!versionSeen) {
        const head = reader.takeByte();
        if (head === null) return;
        versionSeen = true;
        onVersion(head);
      }
      let frame: Frame | null;
      while ((frame = reader.next())) onFrame(frame);
    } catch {
      broken();
    } finally {
      to.uncork();
    }
  };
}

/** Writes to `to`; while `to` is full, `from` is not read (back-pressure). */
function pausingWriter(to: Writable, from: Readable): (bytes: Buffer) => void {
  let full = false;
  return (bytes) => {
    if (to.write(bytes) || full) return;
    full = true;
    from.pause();
    to.once('drain', () => {
      full = false;
      from.resume();
    });
  };
}

// --- HA groups ---------------------------------------------------------------------------------
// With HA groups the relay cannot pass bytes through: calls go to the group's members one by
// one. It answers p11-kit's client itself: each call is decoded, run on an HaConnection of its
// own (one per program, so each has its own sessions and login) and answered.

/** The p11-kit version the relay speaks to programs: what it speaks to the members. */
const HA_PROTOCOL_VERSION = 0;

/** Answers one program's p11-kit RPC calls on `connection` until its side ends. */
export function serveHaStreams(input: Readable, output: Writable, connection: HaConnection): Promise<void> {
  const frames = programRequests();
  let version: number | null = null;
  let queue: Promise<void> = Promise.resolve();
  const answer = async (frame: Frame): Promise<void> => {
    if (frame.refused) {
      output.write(serializeFrame(refusedAnswer(frame)));
      return;
    }
    const decoded = decodeRequest(frame.body, { version: version ?? HA_PROTOCOL_VERSION });
    let body: Buffer;
    if (!decoded.ok) body = encodeErrorResponse(decoded.error.rv);
    else {
      try {
        const args = await connection.call(decoded.value.call, decoded.value.args);
        const encoded = encodeResponse({ call: decoded.value.call, args } as P11KitResponse);
        body = encoded.ok ? encoded.value : encodeErrorResponse(CKR.GENERAL_ERROR);
      } catch (error) {
        body = encodeErrorResponse(error instanceof Pkcs11Error ? error.rv : CKR.GENERAL_ERROR);
      }
    }
    output.write(serializeFrame({ callCode: frame.callCode, options: Buffer.alloc(0), body }));
  };
  return new Promise<void>((resolve) => {
    const end = () => {
      void queue.then(() => connection.close()).finally(() => resolve());
    };
    input.on('data', (chunk: Buffer) => {
      try {
        frames.push(chunk);
        if (version === null) {
          const head = frames.takeByte();
          if (head === null) return;
          version = negotiateVersion(head, HA_PROTOCOL_VERSION);
          output.write(Buffer.from([version]));
        }
        let frame: Frame | null;
        while ((frame = frames.next())) {
          const f = frame;
          queue = queue.then(() => answer(f));
        }
      } catch {
        // A header no p11-kit client sends: the stream cannot be followed.
        input.destroy();
      }
    });
    input.once('end', end);
    input.once('close', end);
  });
}

/** A unix socket (owner-only) where each program gets its own HaConnection. */
export async function serveHaRelay(path: string, connect: () => HaConnection): Promise<Server> {
  await checkRelaySocketPath(path);
  const server = createServer((local: Socket) => {
    local.on('error', () => local.destroy());
    void serveHaStreams(local, local, connect()).finally(() => local.destroy());
  });
  await listenRelaySocket(server, path);
  return server;
}

/**
 * Resolves when SIGTERM or SIGINT has closed `server` (at most 2 s later: links still open end
 * with the process, and the programs using them see the server go away).
 */
export function servedUntilStopped(server: Server): Promise<void> {
  return new Promise<void>((done) => {
    const stop = () => {
      server.close(() => done());
      setTimeout(() => done(), 2000).unref();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
