import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Catalogue } from '../../src/log/catalogue.js';
import { FileSink } from '../../src/log/file-sink.js';
import { Logger } from '../../src/log/logger.js';
import type { SyslogFormat, SyslogTransport } from '../../src/log/syslog-sink.js';

const PEER = '192.168.0.100/40847';
const LINE = /^\d{4} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d testhost {2}local5 (crit|err|warn|info|debug) {2}NTLS \[\d+\]: /;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ntls-log-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

/** Resolves with the promise, or fails the test after `ms`: no test waits unbounded. */
function within<T>(promise: Promise<T>, ms = 5000, what = 'event'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); }),
  ]);
}

describe('Logger to lunalogs', () => {
  it('writes catalogue messages in the guide\'s shape', async () => {
    const file = join(dir, 'logs', 'lunalogs');
    const logger = new Logger({ file, host: 'testhost' });
    logger.log(Catalogue.startingUp);
    logger.log(Catalogue.connectionAccepted, { peer: PEER });
    logger.log(Catalogue.tokenInterfaceInitFailed);
    logger.log(Catalogue.usbTokenUndeployed, { label: 'Backup1', serial: 123456 });
    await logger.close();
    const written = lines(file);
    expect(written).toHaveLength(4);
    for (const line of written) expect(line).toMatch(LINE);
    expect(written[0]).toMatch(new RegExp(`local5 info {2}NTLS \\[${process.pid}\\]: info : 0 : Starting up NTLS\\.{8}$`));
    expect(written[1]).toMatch(/local5 info {2}NTLS \[\d+\]: info : 0xc0000002 : Connection accepted from: 192\.168\.0\.100\/40847$/);
    expect(written[2]).toMatch(/local5 err {2}NTLS \[\d+\]: error : 0xc0000002 Fail to initialize token interface : RC_GENERAL_ERROR$/);
    expect(written[3]).toMatch(/local5 info {2}NTLS \[\d+\]: USB token: Backup1 with serial number: 123456 has been undeployed!$/);
  });

  it('suppresses debug messages unless enabled', async () => {
    const file = join(dir, 'lunalogs');
    const quiet = new Logger({ file, host: 'testhost' });
    quiet.log(Catalogue.partitionsFound, { count: 20 });
    quiet.log(Catalogue.unexpectedReadResponse, { state: 'HEADER STATE' });
    quiet.log(Catalogue.terminated);
    await quiet.close();
    expect(lines(file).map((l) => l.replace(LINE, ''))).toEqual(['info : 0 : NTLS terminated']);

    const verbose = new Logger({ file, host: 'testhost', debug: true });
    verbose.log(Catalogue.partitionsFound, { count: 20 });
    verbose.log(Catalogue.unexpectedReadResponse, { state: 'HEADER STATE' });
    verbose.debugEnabled = false;
    verbose.log(Catalogue.viperSlot, { slot: 1 });
    await verbose.close();
    expect(lines(file).slice(1).map((l) => l.replace(LINE, ''))).toEqual([
      'debug : 0 : Found 20 partitions on HSM.',
      'debug : 0xc0000002     Unexpected read response in HEADER STATE',
    ]);
  });

  it('hands each line and its entry to listeners, and stops when unsubscribed', async () => {
    const logger = new Logger({ host: 'testhost' });
    const seen: [string, string][] = [];
    const off = logger.onLine((line, message) => seen.push([message.id, line]));
    logger.log(Catalogue.onlineAndOperational);
    off();
    logger.log(Catalogue.terminated);
    await logger.close();
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBe('onlineAndOperational');
    expect(seen[0]![1]).toMatch(/: info : 0 : NTLS is online and operational\.$/);
  });

  it('drops lines logged after close instead of failing', async () => {
    const file = join(dir, 'lunalogs');
    const logger = new Logger({ file, host: 'testhost' });
    logger.log(Catalogue.terminated);
    await logger.close();
    expect(() => logger.log(Catalogue.startingUp)).not.toThrow();
    expect(lines(file)).toHaveLength(1);
  });

  it('appends across restarts and never truncates', async () => {
    const file = join(dir, 'lunalogs');
    writeFileSync(file, 'an operator\'s earlier line\n');
    for (let run = 0; run < 3; run++) {
      const logger = new Logger({ file, host: 'testhost' });
      logger.log(Catalogue.startingUp);
      logger.log(Catalogue.terminated);
      await logger.close();
    }
    const written = lines(file);
    expect(written[0]).toBe('an operator\'s earlier line');
    expect(written.slice(1).map((l) => l.replace(LINE, ''))).toEqual(
      Array.from({ length: 3 }, () => ['info : 0 : Starting up NTLS........', 'info : 0 : NTLS terminated']).flat());
  });

  it.runIf(process.platform === 'linux')('keeps the daemon up when the file cannot be written, saying so once', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const logger = new Logger({ file: '/dev/full', host: 'testhost' });
      expect(() => {
        logger.log(Catalogue.startingUp);
        logger.log(Catalogue.terminated);
      }).not.toThrow();
      await logger.close();
      const said = stderr.mock.calls.map((c) => String(c[0])).filter((s) => s.includes('/dev/full'));
      expect(said).toHaveLength(1);
      expect(said[0]).toContain('ENOSPC');
    } finally {
      stderr.mockRestore();
    }
  });
});

describe('FileSink rotation', () => {
  const line = (n: number) => `line ${String(n).padStart(4, '0')} ${'x'.repeat(40)}`; // 51 bytes with newline

  it('rotates at maxBytes, keeping N files, newest first', () => {
    const path = join(dir, 'lunalogs');
    const sink = new FileSink({ path, maxBytes: 500, keep: 2 });
    for (let n = 0; n < 100; n++) sink.write(line(n));
    sink.close();
    expect(existsSync(path)).toBe(true);
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const f of [path, `${path}.1`, `${path}.2`]) expect(statSync(f).size).toBeLessThanOrEqual(500);
    // The kept files hold the latest lines, in order, with none missing between them.
    const kept = [...lines(`${path}.2`), ...lines(`${path}.1`), ...lines(path)];
    expect(kept.at(-1)).toBe(line(99));
    const first = Number(kept[0]!.split(' ')[1]);
    expect(kept).toEqual(Array.from({ length: 100 - first }, (_, i) => line(first + i)));
    expect(lines(`${path}.1`)).toHaveLength(9); // 9 * 51 = 459 <= 500 < 510
  });

  it('continues the size count of an existing file after a restart', () => {
    const path = join(dir, 'lunalogs');
    let sink = new FileSink({ path, maxBytes: 500, keep: 1 });
    for (let n = 0; n < 5; n++) sink.write(line(n));
    sink.close();
    sink = new FileSink({ path, maxBytes: 500, keep: 1 });
    for (let n = 5; n < 10; n++) sink.write(line(n));
    sink.close();
    expect(lines(`${path}.1`)).toEqual(Array.from({ length: 9 }, (_, i) => line(i)));
    expect(lines(path)).toEqual([line(9)]);
  });

  it('with keep 0, starts the file anew when full', () => {
    const path = join(dir, 'lunalogs');
    const sink = new FileSink({ path, maxBytes: 200, keep: 0 });
    for (let n = 0; n < 5; n++) sink.write(line(n));
    sink.close();
    expect(lines(path)).toEqual([line(3), line(4)]);
    expect(existsSync(`${path}.1`)).toBe(false);
  });

  it('rotates even when lunalogs was moved away meanwhile', () => {
    const path = join(dir, 'lunalogs');
    const sink = new FileSink({ path, maxBytes: 200, keep: 2 });
    sink.write(line(0));
    rmSync(path);
    for (let n = 1; n < 8; n++) sink.write(line(n));
    sink.close();
    expect(lines(path).at(-1)).toBe(line(7));
  });
});

// ---------------------------------------------------------------------------------------------
// Syslog: real receivers on loopback and on a unix socket in a temporary folder.

interface Receiver {
  records: string[];
  next(count: number): Promise<string[]>;
  close(): Promise<void>;
  port: number;
  path?: string;
}

function collector() {
  const records: string[] = [];
  const waiters: { count: number; resolve: (r: string[]) => void }[] = [];
  const push = (record: string) => {
    records.push(record);
    for (const w of [...waiters]) {
      if (records.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(records.slice(0, w.count));
      }
    }
  };
  const next = (count: number) => within(new Promise<string[]>((resolve) => {
    if (records.length >= count) resolve(records.slice(0, count));
    else waiters.push({ count, resolve });
  }), 5000, `${count} syslog record(s)`);
  return { records, push, next };
}

async function udpReceiver(): Promise<Receiver> {
  const socket: UdpSocket = createSocket('udp4');
  const c = collector();
  socket.on('message', (message) => c.push(message.toString('utf8')));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    records: c.records, next: c.next, port: socket.address().port,
    close: async () => { socket.close(); },
  };
}

/** A stream receiver that splits records by the framing of `format`, independently of the sink. */
async function streamReceiver(format: SyslogFormat, where: { path?: string }): Promise<Receiver> {
  const c = collector();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (format === 'rfc3164') {
          const nl = pending.indexOf(0x0a);
          if (nl < 0) break;
          c.push(pending.subarray(0, nl).toString('utf8'));
          pending = pending.subarray(nl + 1);
        } else {
          const sp = pending.indexOf(0x20);
          if (sp < 0) break;
          const length = Number(pending.subarray(0, sp).toString('ascii'));
          expect(Number.isInteger(length) && length > 0).toBe(true);
          if (pending.length < sp + 1 + length) break;
          c.push(pending.subarray(sp + 1, sp + 1 + length).toString('utf8'));
          pending = pending.subarray(sp + 1 + length);
        }
      }
    });
  });
  if (where.path) server.listen(where.path);
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    records: c.records, next: c.next,
    port: where.path ? 0 : (server.address() as AddressInfo).port,
    path: where.path,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await within(once(server, 'close'), 5000, 'receiver close');
    },
  };
}

const RFC3164 = /^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d testhost NTLS\[(\d+)\]: (.*)$/s;
const RFC5424 = /^<(\d+)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z testhost NTLS (\d+) - - (.*)$/s;

describe('Logger to a syslog receiver', () => {
  const cases: [SyslogTransport, SyslogFormat][] = [
    ['udp', 'rfc3164'], ['udp', 'rfc5424'],
    ['tcp', 'rfc3164'], ['tcp', 'rfc5424'],
    ['unix', 'rfc3164'], ['unix', 'rfc5424'],
  ];

  it.each(cases)('%s, %s: delivers each line with local5 priority, in order', async (transport, format) => {
    const receiver = transport === 'udp' ? await udpReceiver()
      : await streamReceiver(format, transport === 'unix' ? { path: join(dir, 'syslog.sock') } : {});
    const logger = new Logger({
      host: 'testhost',
      syslog: { transport, format, host: '127.0.0.1', port: receiver.port, path: receiver.path },
    });
    try {
      logger.log(Catalogue.listeningPortBindFailed);
      logger.log(Catalogue.connectionAccepted, { peer: PEER });
      logger.log(Catalogue.partitionsFound, { count: 20 }); // debug: off, so not sent
      logger.log(Catalogue.usbTokenUndeployed, { label: 'Backup1', serial: 123456 });
      const records = await receiver.next(3);
      const shape = format === 'rfc3164' ? RFC3164 : RFC5424;
      const parsed = records.map((r) => {
        const m = shape.exec(r);
        expect(m, r).not.toBeNull();
        return { pri: Number(m![1]), pid: Number(m![2]), body: m![3] };
      });
      expect(parsed).toEqual([
        { pri: 170, pid: process.pid, body: 'critical : 0xc0000500 : NTLS listening port could not Bind : RC_SOCKET_ERROR' },
        { pri: 174, pid: process.pid, body: 'info : 0xc0000002 : Connection accepted from: 192.168.0.100/40847' },
        { pri: 174, pid: process.pid, body: 'USB token: Backup1 with serial number: 123456 has been undeployed!' },
      ]);
      await within(logger.close(), 5000, 'logger close');
      expect(receiver.records).toHaveLength(3);
    } finally {
      await logger.close();
      await receiver.close();
    }
  });

  it('delivers the lines written before close, and close resolves', async () => {
    const receiver = await streamReceiver('rfc5424', {});
    const logger = new Logger({ host: 'testhost', syslog: { transport: 'tcp', format: 'rfc5424', host: '127.0.0.1', port: receiver.port } });
    try {
      for (let n = 0; n < 200; n++) logger.log(Catalogue.viperSlot, { slot: n });
      logger.debugEnabled = true;
      for (let n = 0; n < 50; n++) logger.log(Catalogue.viperSlot, { slot: n });
      await within(logger.close(), 5000, 'logger close');
      const records = await receiver.next(50);
      expect(records.map((r) => RFC5424.exec(r)![3])).toEqual(Array.from({ length: 50 }, (_, n) => `debug : 0 : viper slot = ${n}`));
    } finally {
      await receiver.close();
    }
  });

  it('a receiver that is down fails nothing, and is reached again once it is up', async () => {
    // A port that was free a moment ago: nothing listens there yet.
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');

    const logger = new Logger({ host: 'testhost', syslog: { transport: 'tcp', format: 'rfc3164', host: '127.0.0.1', port } });
    let receiver: Receiver | undefined;
    try {
      expect(() => logger.log(Catalogue.startingUp)).not.toThrow();
      // Let the refused connection fail.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const c = collector();
      const server = createServer((socket) => {
        let pending = '';
        socket.on('data', (chunk) => {
          pending += chunk.toString('utf8');
          const parts = pending.split('\n');
          pending = parts.pop()!;
          for (const p of parts) c.push(p);
        });
      });
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      receiver = { records: c.records, next: c.next, port, close: async () => { server.close(); } };
      logger.log(Catalogue.onlineAndOperational);
      const [record] = await receiver.next(1);
      expect(RFC3164.exec(record!)![3]).toBe('info : 0 : NTLS is online and operational.');
    } finally {
      await within(logger.close(), 5000, 'logger close');
      await receiver?.close();
    }
  });

  it('UDP to nobody fails nothing and close resolves', async () => {
    const receiver = await udpReceiver();
    const port = receiver.port;
    await receiver.close();
    const logger = new Logger({ host: 'testhost', syslog: { transport: 'udp', format: 'rfc3164', host: '127.0.0.1', port } });
    expect(() => logger.log(Catalogue.startingUp)).not.toThrow();
    await within(logger.close(), 5000, 'logger close');
  });
});
