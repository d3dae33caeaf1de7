import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, existsSync } from 'node:fs';
import { appendWhole } from './append-whole.js';
import { dirname } from 'node:path';

export interface FileSinkOptions {
  path: string;
  /** Rotate when the file would grow past this many bytes. */
  maxBytes: number;
  /** Rotated files kept: lunalogs.1 ... lunalogs.<keep>. */
  keep: number;
}

/**
 * Appends lines to lunalogs with synchronous writes, so a line written before a crash or an
 * exit is on disk, and lines from one process keep their order. Never truncates: on start it
 * appends; when full it renames lunalogs to lunalogs.1 (shifting older ones) and starts anew.
 */
export class FileSink {
  private fd: number | null = null;
  private size = 0;
  private closed = false;

  constructor(private readonly options: FileSinkOptions) {
    this.open();
  }

  write(line: string): void {
    if (this.closed) return;
    // After a failed write or rotation the file is opened again on the next line.
    if (this.fd === null) this.open();
    const bytes = Buffer.from(line + '\n', 'utf8');
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) this.rotate();
    appendWhole(this.fd!, bytes);
    this.size += bytes.length;
  }

  /**
   * When the file at the path is no longer the one written (logrotate, or an operator, renamed
   * or removed it), opens the path anew, so the next line goes where the operator looks.
   */
  reopenIfMoved(): void {
    if (this.closed || this.fd === null) return;
    let moved: boolean;
    try {
      const open = fstatSync(this.fd);
      const atPath = statSync(this.options.path);
      moved = open.ino !== atPath.ino || open.dev !== atPath.dev;
    } catch {
      moved = true;
    }
    if (!moved) return;
    closeSync(this.fd);
    this.fd = null;
    this.open();
  }

  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private open(): void {
    mkdirSync(dirname(this.options.path), { recursive: true, mode: 0o750 });
    this.fd = openSync(this.options.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    closeSync(this.fd!);
    this.fd = null;
    const { path, keep } = this.options;
    // The current file may be gone already (an operator or logrotate moved it): rotate what is there.
    if (keep <= 0) {
      rmSync(path, { force: true });
    } else {
      rmSync(`${path}.${keep}`, { force: true });
      for (let n = keep - 1; n >= 1; n--) {
        if (existsSync(`${path}.${n}`)) renameSync(`${path}.${n}`, `${path}.${n + 1}`);
      }
      if (existsSync(path)) renameSync(path, `${path}.1`);
    }
    this.open();
  }
}
