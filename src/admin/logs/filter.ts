// Filters of `ntls logs tail`: a least severity, a client, a code. A client is named only on
// some lines of a connection ("NTLS Client "alice" connected and authenticated : P"); the
// others carry just the peer ("Connection accepted from: P"). So lines are attributed to a
// client through their connection: from "Incoming connection request... : P" on, the lines of
// peer P belong to one connection, whose client is known once a line names it; lines before
// that wait (bounded) and go out with it. A peer address reused later starts a new connection.
import type { Severity } from '../../log/message.js';
import { LogToolError } from './errors.js';
import type { ExplainedLine } from './explain.js';
import { severityOf } from './line.js';

const RANK: Record<Severity, number> = { debug: 0, info: 1, warn: 2, err: 3, crit: 4 };
export const LEVELS = ['crit', 'err', 'warn', 'info', 'debug'] as const;

export function parseLevel(value: string): Severity {
  const severity = severityOf(value);
  if (!severity || !/^(crit|critical|err|error|warn|warning|info|debug)$/i.test(value)) {
    throw new LogToolError('NTLS_ERR_LOG_BAD_LEVEL', `--level "${value}" is no level; use one of ${LEVELS.join(', ')} (lines of that level and more severe are shown).`);
  }
  return severity;
}

export function parseCode(value: string): number {
  if (!/^(0|0x[0-9a-f]{1,8}|[1-9]\d*)$/i.test(value)) {
    throw new LogToolError('NTLS_ERR_LOG_BAD_CODE', `--code "${value}" is no code; give it as the log prints it, e.g. 0xc0000002 or 0.`);
  }
  return value.toLowerCase().startsWith('0x') ? Number.parseInt(value, 16) : Number(value);
}

export interface LineFilterOptions {
  level?: Severity;
  client?: string;
  code?: number;
}

/** The severity a line shows: its syslog severity, else its inner label. */
function severityOfLine(line: ExplainedLine): Severity | null {
  const parsed = line.parsed;
  if (!parsed) return null;
  return parsed.severity ?? (parsed.label ? severityOf(parsed.label) : null);
}

const START_IDS = new Set(['incomingConnection']);
const MAX_PENDING = 256;

interface Connection {
  client: string | null;
  pending: ExplainedLine[];
}

export class LineFilter {
  private readonly connections = new Map<string, Connection>();

  constructor(private readonly options: LineFilterOptions) {}

  /** Lines to show now, given this line (earlier lines of a connection may come out with it). */
  push(line: ExplainedLine): ExplainedLine[] {
    if (!this.passesLevelAndCode(line)) {
      // Still learn the connection's client from it.
      if (this.options.client !== undefined) this.attribute(line, false);
      return [];
    }
    if (this.options.client === undefined) return [line];
    return this.attribute(line, true);
  }

  private passesLevelAndCode(line: ExplainedLine): boolean {
    const { level, code } = this.options;
    if (level !== undefined) {
      const severity = severityOfLine(line);
      if (severity === null || RANK[severity] < RANK[level]) return false;
    }
    if (code !== undefined) {
      const lineCode = line.parsed?.code ?? (line.parsed && line.parsed.label === null && line.status !== 'unknown' ? 0 : null);
      if (lineCode !== code) return false;
    }
    return true;
  }

  private attribute(line: ExplainedLine, keep: boolean): ExplainedLine[] {
    const wanted = this.options.client!;
    const { peer, client } = line.params;
    if (peer === undefined) return keep && client === wanted ? [line] : [];
    let connection = this.connections.get(peer);
    if (!connection || (line.id !== null && START_IDS.has(line.id))) {
      connection = { client: null, pending: [] };
      this.connections.set(peer, connection);
    }
    if (client !== undefined) connection.client = client;
    const peerHost = peer.slice(0, peer.lastIndexOf('/') >= 0 ? peer.lastIndexOf('/') : peer.length);
    if (connection.client === null && peerHost !== wanted) {
      if (keep) {
        connection.pending.push(line);
        if (connection.pending.length > MAX_PENDING) connection.pending.shift();
      }
      return [];
    }
    const out = connection.client === wanted || peerHost === wanted ? [...connection.pending, ...(keep ? [line] : [])] : [];
    connection.pending = [];
    return out;
  }
}
