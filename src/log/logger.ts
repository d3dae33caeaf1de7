import { hostname } from 'node:os';
import type { Message, TemplateParams } from './message.js';
import { renderBody } from './message.js';
import { formatLine, type LineOrigin } from './format.js';
import { FileSink } from './file-sink.js';
import { SyslogSink, type SyslogFormat, type SyslogTransport } from './syslog-sink.js';

export interface LoggerOptions {
  /** Path of lunalogs; omitted, nothing is written to a file (tests of other modules). */
  file?: string;
  maxBytes?: number;
  keep?: number;
  debug?: boolean;
  syslog?: { transport: SyslogTransport; format: SyslogFormat; host: string; port: number; path?: string } | null;
  /** Also mirror lines on stderr (foreground `ntls start`). */
  echo?: boolean;
  /**
   * Under systemd (JOURNAL_STREAM set): also write each line's text on stdout with its syslog
   * priority as a `<N>` prefix and no timestamp, host or pid (the journal adds them).
   */
  journal?: boolean;
  host?: string;
  /**
   * Hands each message to another process's logger instead of writing it (a datapath worker's
   * lines are the daemon's: its main process writes them, in order, with its own pid).
   */
  relay?: (message: Message, params: Record<string, string | number>) => void;
}

const JOURNAL_PRIORITY: Record<string, number> = { crit: 2, err: 3, warn: 4, info: 6, debug: 7 };

export type LineListener = (line: string, message: Message) => void;

/** Writes catalogue messages, and only those, in the guide's shape. */
export class Logger {
  readonly origin: LineOrigin;
  private readonly file?: FileSink;
  private readonly syslog?: SyslogSink;
  private readonly listeners = new Set<LineListener>();
  private closed = false;
  private fileFailure: string | null = null;
  private linesLost = 0;
  debugEnabled: boolean;

  constructor(private readonly options: LoggerOptions = {}) {
    this.origin = { host: options.host ?? hostname().split('.')[0]!, pid: process.pid };
    this.debugEnabled = options.debug ?? false;
    if (options.file) {
      this.file = new FileSink({ path: options.file, maxBytes: options.maxBytes ?? 10 * 1024 * 1024, keep: options.keep ?? 5 });
    }
    if (options.syslog) {
      this.syslog = new SyslogSink({ ...options.syslog, hostname: this.origin.host, pid: this.origin.pid });
    }
  }

  log<T extends string>(message: Message<T>, ...params: keyof TemplateParams<T> extends never ? [] : [TemplateParams<T>]): void {
    if (this.closed || (message.severity === 'debug' && !this.debugEnabled)) return;
    const values = (params[0] ?? {}) as Record<string, string | number>;
    if (this.options.relay) {
      this.options.relay(message, values);
      return;
    }
    const at = new Date();
    const body = renderBody(message, values);
    const line = formatLine(at, this.origin, message.severity, body);
    this.writeFile(line);
    this.syslog?.write(at, message.severity, body);
    if (this.options.echo) process.stderr.write(line + '\n');
    if (this.options.journal) process.stdout.write(`<${JOURNAL_PRIORITY[message.severity] ?? 6}>${body}\n`);
    for (const listener of this.listeners) listener(line, message);
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** SIGHUP, a crash: the next line goes to the log file's path even if the file there was renamed. */
  reopenIfMoved(): void {
    try {
      this.file?.reopenIfMoved();
    } catch {
      // The folder is gone: writeFile says so on the next line and retries.
    }
  }

  /** Lines logged after close are dropped; resolves when the syslog receiver has what was sent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.file?.close();
    await this.syslog?.close();
  }

  /**
   * A log file that cannot be written (disk full, folder removed) must not take the daemon down
   * with it: the failure is said once on stderr, and writing resumes when the file works again.
   */
  private writeFile(line: string): void {
    if (!this.file) return;
    try {
      this.file.write(line);
      if (this.fileFailure !== null) {
        process.stderr.write(`ntls: writing ${this.options.file} again; ${this.linesLost} line(s) could not be written to it\n`);
      }
      this.fileFailure = null;
      this.linesLost = 0;
    } catch (error) {
      const problem = (error as NodeJS.ErrnoException).code ?? String(error);
      if (this.fileFailure !== problem) {
        process.stderr.write(`ntls: cannot write ${this.options.file}: ${problem}; lines are not being logged to the file\n`);
      }
      this.fileFailure = problem;
      this.linesLost++;
    }
  }
}
