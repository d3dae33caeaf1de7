import { createSocket, type Socket as UdpSocket } from 'node:dgram';
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

/**
 * Forwards each line to a syslog receiver. Delivery is best effort: a receiver that is down
 * never blocks or fails the daemon; TCP reconnects on the next line. Stream transports use
 * octet-counting framing (RFC 6587) for RFC 5424 and a newline for RFC 3164.
 */
export class SyslogSink {
  private udp?: UdpSocket;
  private stream?: Socket;
  private streamReady = false;
  private pending: string[] = [];

  constructor(private readonly options: SyslogSinkOptions) {
    if (options.transport === 'udp') {
      this.udp = createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
      this.udp.on('error', () => { /* best effort */ });
      this.udp.unref();
    }
  }

  write(at: Date, severity: Severity, body: string): void {
    const record = formatSyslogRecord(this.options.format, at, this.options.hostname, this.options.pid, severity, body);
    if (this.udp) {
      this.udp.send(record, this.options.port, this.options.host);
      return;
    }
    const framed = this.options.format === 'rfc5424' ? `${Buffer.byteLength(record)} ${record}` : `${record}\n`;
    this.sendStream(framed);
  }

  close(): void {
    this.udp?.close();
    this.stream?.end();
  }

  private sendStream(framed: string): void {
    if (!this.stream) this.openStream();
    if (this.streamReady) this.stream!.write(framed);
    else if (this.pending.length < 1000) this.pending.push(framed);
  }

  private openStream(): void {
    const socket = this.options.transport === 'unix'
      ? connect({ path: this.options.path ?? '/dev/log' })
      : connect({ host: this.options.host, port: this.options.port });
    socket.unref();
    socket.on('connect', () => {
      this.streamReady = true;
      for (const line of this.pending.splice(0)) socket.write(line);
    });
    const reset = () => {
      this.stream = undefined;
      this.streamReady = false;
    };
    socket.on('error', reset);
    socket.on('close', reset);
    this.stream = socket;
  }
}
