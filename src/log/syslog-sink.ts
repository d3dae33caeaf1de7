import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Severity } from './message.js';

export type SyslogTransport = 'udp' | 'tcp' | 'unix';
export type SyslogFormat = 'rfc3164' | 'rfc5424';

export interface SyslogSinkOptions {
  transport: SyslogTransport;
  format: SyslogFormat;
  host: string;
  port: number;
  /** Unix stream socket path (transport 'unix'). */
  path?: string;
  hostname: string;
  pid: number;
}

const LOCAL5 = 21;
const severityNumber: Record<Severity, number> = { crit: 2, err: 3, warn: 4, info: 6, debug: 7 };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Bytes a stream transport may hold for a receiver that is slow or away; beyond, lines are dropped. */
const MAX_BUFFERED = 1024 * 1024;

export function syslogPriority(severity: Severity): number {
  return LOCAL5 * 8 + severityNumber[severity];
}

/** An RFC 3164 or RFC 5424 record for one message body (what follows "NTLS [pid]: "). */
export function formatSyslogRecord(format: SyslogFormat, at: Date, hostname: string, pid: number, severity: Severity, body: string): string {
  const pri = `<${syslogPriority(severity)}>`;
  if (format === 'rfc5424') return `${pri}1 ${at.toISOString()} ${hostname} NTLS ${pid} - - ${body}`;
  const day = String(at.getDate()).padStart(2, ' ');
  const time = at.toTimeString().slice(0, 8);
  return `${pri}${MONTHS[at.getMonth()]} ${day} ${time} ${hostname} NTLS[${pid}]: ${body}`;
}

/** Stream framing: octet counting (RFC 6587 3.4.1) for RFC 5424, a newline for RFC 3164. */
export function frameSyslogRecord(format: SyslogFormat, record: string): string {
  return format === 'rfc5424' ? `${Buffer.byteLength(record)} ${record}` : `${record}\n`;
}

/**
 * Forwards each line to a syslog receiver. Delivery is best effort: a receiver that is down
 * never blocks or fails the daemon; a stream transport reconnects on the next line after a
 * failure, and what it buffers meanwhile is bounded.
 */
export class SyslogSink {
  private udp?: UdpSocket;
  private udpInFlight = 0;
  private stream?: Socket;
  private closed = false;
  private readonly drained: (() => void)[] = [];

  constructor(private readonly options: SyslogSinkOptions) {
    if (options.transport === 'udp') {
      this.udp = createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
      this.udp.on('error', () => { /* best effort */ });
      this.udp.unref();
    }
  }

  write(at: Date, severity: Severity, body: string): void {
    if (this.closed) return;
    const record = formatSyslogRecord(this.options.format, at, this.options.hostname, this.options.pid, severity, body);
    if (this.udp) {
      this.udpInFlight++;
      this.udp.send(record, this.options.port, this.options.host, () => {
        if (--this.udpInFlight === 0) for (const done of this.drained.splice(0)) done();
      });
      return;
    }
    const stream = this.stream ?? this.openStream();
    if (stream.writableLength > MAX_BUFFERED) return;
    // A connecting socket keeps what is written until it is connected.
    stream.write(frameSyslogRecord(this.options.format, record));
  }

  /** Stops forwarding; resolves once what was written has been handed to the kernel (bounded). */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    if (this.udp) {
      const udp = this.udp;
      if (this.udpInFlight > 0) await Promise.race([new Promise<void>((resolve) => this.drained.push(resolve)), timeout]);
      try { udp.close(); } catch { /* already closed */ }
    }
    const stream = this.stream;
    if (stream && !stream.destroyed) {
      stream.end();
      await Promise.race([once(stream, 'close').then(() => undefined, () => undefined), timeout]);
      stream.destroy();
    }
  }

  private openStream(): Socket {
    const socket = this.options.transport === 'unix'
      ? connect({ path: this.options.path ?? '/dev/log' })
      : connect({ host: this.options.host, port: this.options.port });
    socket.unref();
    // Only the current stream is forgotten: a late event of an old one must not drop a new one.
    const forget = () => {
      if (this.stream === socket) this.stream = undefined;
    };
    socket.on('error', forget);
    socket.on('close', forget);
    // A receiver does not talk back; reading keeps the socket from stalling if it ever does.
    socket.resume();
    this.stream = socket;
    return socket;
  }
}
