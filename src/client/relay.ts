// The bridge for stock PKCS#11 programs: p11-kit's client module speaks the p11-kit RPC
// protocol to its "remote" (a command on stdin/stdout, or a unix socket); the relay opens the
// mutual-TLS link to ntls, performs the identity exchange, then passes bytes both ways. Requests
// go to the server a whole frame per write (one TLS record), answers come back as they arrive.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex, Readable, Writable } from 'node:stream';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { FrameBatcher, FrameReader, serializeFrame, type Frame } from '../protocol/frame.js';
import {
  CALL_ID, decodeRequest, decodeResponse, encodeErrorResponse, encodeResponse, negotiateVersion, peekCallId, type P11KitResponse,
} from '../protocol/p11kit/index.js';
import { ClientError } from './errors.js';
import { AttributeReadAhead } from './read-ahead.js';
import type { HaConnection } from './ha-connection.js';
import { LinkError, openIdentifiedLink, type IdentifiedLink, type LinkOptions } from './link.js';

/** p11-kit's client sends one version byte before its first frame. */
const P11KIT_VERSION_BYTES = 1;
const MAX_LOCAL_FRAME_BYTES = 64 * 1024 * 1024;
/** How long a program whose link could not be made may stay silent before its socket is ended. */
const UNLINKED_IDLE_MS = 3000;
/** How long the check for another relay on the --listen path waits for an answer. */
const PROBE_TIMEOUT_MS = 1000;

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
}

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
  join(input, output, socket, initial, hooks);
  socket.resume();
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    input.once('end', () => socket.end());
  });
}

/**
 * Serves a unix socket (owner-only); each connection on it gets its own link to ntls, so each
 * PKCS#11 program using P11_KIT_SERVER_ADDRESS=unix:path=... has its own sessions and login.
 */
export async function serveRelay(path: string, options: LinkOptions | LinkSource, onError: (error: Error) => void, hooks: RelayHooks = {}): Promise<Server> {
  const source = sourceOf(options);
  prepareSocketFolder(path);
  await clearStaleSocket(path);
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
      join(local, local, socket, initial, hooks);
      const end = () => {
        local.destroy();
        socket.destroy();
      };
      for (const side of [local, socket]) {
        side.once('close', end);
        side.on('error', end);
      }
      local.resume();
      socket.resume();
    }, (error: Error) => {
      onError(error);
      answerUnlinked(local);
    });
  };
  try {
    await listenOwnerOnly(server, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ClientError('NTLS_ERR_FILE', `cannot listen on ${path} (${code})`, 'give --listen a path in a folder you can write, e.g. $XDG_RUNTIME_DIR/ntls.sock');
  }
  return server;
}

/**
 * Answers a program whose link could not be made, in p11-kit RPC itself: the version byte, then
 * CKR_DEVICE_ERROR for every call, as `p11-kit server` does for a module whose C_Initialize
 * fails. Closing the socket unread instead kills programs with SIGPIPE: p11-kit's client writes
 * without MSG_NOSIGNAL. The socket ends when the program closes it or stays silent too long.
 */
function answerUnlinked(local: Socket): void {
  const frames = new FrameReader(MAX_LOCAL_FRAME_BYTES);
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

/**
 * A socket file already at `path` is removed only when nothing answers there: a relay still
 * listening keeps its socket, and the second one is refused rather than taking it over.
 */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (await somethingListens(path)) {
    throw new ClientError('NTLS_ERR_FILE', `another relay is listening on ${path}`, 'stop it or choose another --listen path');
  }
  rmSync(path, { force: true });
}

function somethingListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (answer: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answer);
    };
    // A listener that accepts nothing within the bound is taken as alive: removing its file is the harm avoided.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  });
}

/**
 * The socket's folder is made (owner-only, 0700) when it does not exist, as with
 * `--listen /run/user/$UID/ntls/relay.sock`; one that cannot be made is a one-line failure.
 */
function prepareSocketFolder(path: string): void {
  const folder = dirname(path);
  if (existsSync(folder)) return;
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ClientError('NTLS_ERR_FILE', `cannot make the folder ${folder} for the relay socket (${code})`,
      'give --listen a path in a folder you can write, e.g. $XDG_RUNTIME_DIR/ntls.sock or ~/.config/ntls-client/relay.sock');
  }
}

/** Joins a program's streams to its link, with attribute read-ahead unless turned off. */
function join(input: Readable, output: Writable, link: Duplex, initial: Buffer, hooks: RelayHooks): void {
  if (hooks.readAhead === false) {
    if (initial.length) output.write(initial);
    forwardFrames(input, link);
    if (hooks.onNoSlots) watchForNoSlots(link, initial, hooks.onNoSlots);
    link.pipe(output, { end: false });
  } else relayWithReadAhead(input, output, link, initial, hooks.onNoSlots);
}

/** Reads the server's answers (a copy) until a C_GetSlotList answer lists no slot, then calls `onNoSlots`. */
function watchForNoSlots(link: Readable, initial: Buffer, onNoSlots: () => void): void {
  const answers = new FrameReader(MAX_LOCAL_FRAME_BYTES);
  let versionSeen = false;
  const read = (chunk: Buffer) => {
    try {
      answers.push(chunk);
      if (!versionSeen && answers.takeByte() === null) return;
      versionSeen = true;
      let frame: Frame | null;
      while ((frame = answers.next())) {
        if (!answersNoSlots(frame.body)) continue;
        link.off('data', read);
        onNoSlots();
        return;
      }
    } catch {
      link.off('data', read);
    }
  };
  if (initial.length) read(initial);
  link.on('data', read);
}

/** Whether `body` is a successful C_GetSlotList answer that lists (or counts) no slot. */
export function answersNoSlots(body: Buffer): boolean {
  if (peekCallId(body) !== CALL_ID.C_GetSlotList) return false;
  const decoded = decodeResponse(body, 'C_GetSlotList');
  return decoded.ok && decoded.value.call === 'C_GetSlotList' && decoded.value.args.slotList.length === 0;
}

/**
 * The relay with attribute read-ahead: whole frames both ways. p11-kit's client may have calls
 * of several threads in flight on one socket (answers are matched by call code), so requests
 * are sent on as they come; read-ahead only plans a call when nothing else is in flight, and any
 * call that overlaps another ends the burst. Frames the server sends unasked are passed on.
 */
export function relayWithReadAhead(input: Readable, output: Writable, link: Duplex, initial: Buffer, onNoSlots?: () => void): void {
  const requests = new FrameReader(MAX_LOCAL_FRAME_BYTES);
  const answers = new FrameReader(MAX_LOCAL_FRAME_BYTES);
  const readAhead = new AttributeReadAhead();
  let version: number | null = null;
  let inFlight = 0;
  let fetching: { callCode: number; request: Frame; then: (answer: Buffer) => Buffer | null } | null = null;
  const broken = () => {
    input.destroy();
    link.destroy();
  };
  const linkWriter = pausingWriter(link, input);
  const programWriter = pausingWriter(output, link);
  const toLink = (frame: Frame) => {
    inFlight++;
    linkWriter(serializeFrame(frame));
  };
  const toProgram = (frame: Frame) => programWriter(serializeFrame(frame));
  const serve = (frame: Frame) => {
    if (inFlight > 0) {
      readAhead.interrupt();
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
    inFlight = Math.max(0, inFlight - 1);
    if (onNoSlots && !noSlotsTold && answersNoSlots(frame.body)) {
      noSlotsTold = true;
      onNoSlots();
    }
    const fetched = fetching;
    if (fetched && frame.callCode === fetched.callCode) {
      fetching = null;
      const body = fetched.then(frame.body);
      if (body) toProgram({ callCode: frame.callCode, options: frame.options, body });
      else toLink(fetched.request);
    } else toProgram(frame);
  };
  input.on('data', versionThenFrames(requests, link, (head) => link.write(Buffer.from([head])), serve, broken));
  const fromLink = versionThenFrames(answers, output, (head) => {
    version = head;
    output.write(Buffer.from([head]));
  }, answered, broken);
  if (initial.length) fromLink(initial);
  link.on('data', fromLink);
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

/** Local bytes to the link, cut at frame ends; waits for `drain` when the link is full. */
function forwardFrames(local: Readable, link: Writable): void {
  const batcher = new FrameBatcher(P11KIT_VERSION_BYTES);
  local.on('data', (chunk: Buffer) => {
    const unit = batcher.push(chunk);
    if (unit && !link.write(unit)) {
      local.pause();
      link.once('drain', () => local.resume());
    }
  });
}

// --- HA groups ---------------------------------------------------------------------------------
// With HA groups the relay cannot pass bytes through: calls go to the group's members one by
// one. It answers p11-kit's client itself: each call is decoded, run on an HaConnection of its
// own (one per program, so each has its own sessions and login) and answered.

/** The p11-kit version the relay speaks to programs: what it speaks to the members. */
const HA_PROTOCOL_VERSION = 0;

/** Answers one program's p11-kit RPC calls on `connection` until its side ends. */
export function serveHaStreams(input: Readable, output: Writable, connection: HaConnection): Promise<void> {
  const frames = new FrameReader(MAX_LOCAL_FRAME_BYTES);
  let version: number | null = null;
  let queue: Promise<void> = Promise.resolve();
  const answer = async (frame: Frame): Promise<void> => {
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
  await clearStaleSocket(path);
  const server = createServer((local: Socket) => {
    local.on('error', () => local.destroy());
    void serveHaStreams(local, local, connect()).finally(() => local.destroy());
  });
  await listenOwnerOnly(server, path);
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
