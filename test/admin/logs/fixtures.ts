// Synthetic lunalogs for the log-tool tests, written line by line in the guide's shape.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue, type MessageId } from '../../../src/log/catalogue.js';
import { formatMessage } from '../../../src/log/format.js';

export class LogWriter {
  readonly lines: string[] = [];
  private second = 0;
  pid = 100;

  /** Appends a catalogue message at the next second of 2026 Nov 26 09:00. */
  add(id: MessageId, params: Record<string, string | number> = {}): this {
    const at = new Date(2026, 10, 26, 9, 0, this.second++);
    this.lines.push(formatMessage(at, { host: 'hsm1', pid: this.pid }, Catalogue[id], params));
    return this;
  }

  raw(line: string): this {
    this.lines.push(line);
    return this;
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** A temporary service home with `logs/lunalogs` holding `text`. */
export function homeWithLog(text: string): { home: string; logDirectory: string; logFile: string } {
  const home = mkdtempSync(join(tmpdir(), 'ntls-logs-test-'));
  const logDirectory = join(home, 'logs');
  mkdirSync(logDirectory);
  const logFile = join(logDirectory, 'lunalogs');
  writeFileSync(logFile, text);
  return { home, logDirectory, logFile };
}

/** A plain start and stop of a service with one good connection: nothing the guide calls unexpected. */
export function cleanLog(): LogWriter {
  const peer = '10.0.0.9/41000';
  return new LogWriter()
    .add('startingUp')
    .add('onlineAndOperational')
    .add('incomingConnection', { peer })
    .add('connectionAccepted', { peer })
    .add('clientAuthenticated', { client: 'web1', peer })
    .add('connectionTerminating', { peer })
    .add('clientDisconnected', { client: 'web1', peer })
    .add('shuttingDown')
    .add('terminated');
}
