import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync, existsSync } from 'node:fs';
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
  private fd: number;
  private size: number;

  constructor(private readonly options: FileSinkOptions) {
    mkdirSync(dirname(options.path), { recursive: true, mode: 0o750 });
    this.fd = openSync(options.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): void {
    const bytes = Buffer.from(line + '\n', 'utf8');
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) this.rotate();
    writeSync(this.fd, bytes);
    this.size += bytes.length;
  }

  close(): void {
    closeSync(this.fd);
  }

  private rotate(): void {
    closeSync(this.fd);
    const { path, keep } = this.options;
    if (keep <= 0) {
      rmSync(path, { force: true });
    } else {
      rmSync(`${path}.${keep}`, { force: true });
      for (let n = keep - 1; n >= 1; n--) {
        if (existsSync(`${path}.${n}`)) renameSync(`${path}.${n}`, `${path}.${n + 1}`);
      }
      renameSync(path, `${path}.1`);
    }
    this.fd = openSync(path, 'a', 0o640);
    this.size = 0;
  }
}
