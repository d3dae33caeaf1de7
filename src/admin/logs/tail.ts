// `ntls logs tail`: the last lines of lunalogs that pass the filters, then, with -f, the lines
// written after them — across rotation (lunalogs renamed to lunalogs.1 and a new lunalogs
// started: the rest of the old file is read, then the new one from its beginning) and
// truncation. Following polls the file (fs.watch misses renames on some file systems) and ends
// when its AbortSignal fires.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { explainLine, type ExplainedLine } from './explain.js';
import { LineFilter } from './filter.js';
import { catalogueMatcher } from './matcher.js';
import { readLines, type LogSource } from './reader.js';

/** The last `count` lines of the source that pass the filter, in file order. */
export async function lastLines(source: LogSource, filter: LineFilter, count: number): Promise<{ lines: ExplainedLine[]; total: number }> {
  const matcher = catalogueMatcher();
  let kept: ExplainedLine[] = [];
  let lineNo = 0;
  for await (const raw of readLines(source)) {
    lineNo++;
    if (raw === '') continue;
    kept.push(...filter.push(explainLine(raw, lineNo, matcher)));
    // Lines released late (a connection's first lines, once its client is known) are earlier
    // lines: keep some slack, order by line number, then cut.
    if (kept.length > 2 * count + 512) kept = trim(kept, count);
  }
  return { lines: trim(kept, count), total: lineNo };
}

function trim(lines: ExplainedLine[], count: number): ExplainedLine[] {
  const sorted = [...lines].sort((a, b) => a.line - b.line);
  return count === 0 ? [] : sorted.slice(-count);
}

export interface FollowOptions {
  filter: LineFilter;
  /** Line number of the last line already read (numbering goes on from there; resets on rotation). */
  startLine: number;
  /** Byte offset to start from (the size of the file when its last lines were shown). */
  startOffset: number;
  signal: AbortSignal;
  /** Called for each line that passes; a promise returned is awaited (a full pipe holds reading back). */
  onLine: (line: ExplainedLine) => void | Promise<void>;
  /** Called when the file was rotated or truncated and reading starts anew. */
  onRotate?: () => void;
  pollMs?: number;
}

const CHUNK = 64 * 1024;

/** Follows `path` until the signal fires. */
export async function follow(path: string, options: FollowOptions): Promise<void> {
  const matcher = catalogueMatcher();
  const pollMs = options.pollMs ?? 200;
  let handle: FileHandle | null = await openIfThere(path);
  let inode = handle ? (await handle.stat()).ino : -1;
  let offset = options.startOffset;
  let lineNo = options.startLine;
  let partial = '';
  const buffer = Buffer.alloc(CHUNK);

  const emit = async (raw: string) => {
    lineNo++;
    if (raw === '') return;
    for (const line of options.filter.push(explainLine(raw, lineNo, matcher))) await options.onLine(line);
  };

  /** Reads what the open file holds past `offset`. */
  const drain = async () => {
    if (!handle) return;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, offset);
      if (bytesRead === 0) return;
      offset += bytesRead;
      const text = partial + buffer.subarray(0, bytesRead).toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const raw of parts) await emit(raw.replace(/\r$/, ''));
    }
  };

  try {
    while (!options.signal.aborted) {
      await drain();
      const now = await stat(path).catch(() => null);
      if (now && (now.ino !== inode || now.size < offset)) {
        // Rotated (a new file at the path) or truncated: finish the old file, then start anew.
        await drain();
        if (partial) { await emit(partial); partial = ''; }
        await handle?.close();
        handle = await openIfThere(path);
        inode = handle ? (await handle.stat()).ino : -1;
        offset = 0;
        lineNo = 0;
        options.onRotate?.();
        continue;
      }
      await sleep(pollMs, options.signal);
    }
  } finally {
    await handle?.close();
  }
}

async function openIfThere(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch {
    return null;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
