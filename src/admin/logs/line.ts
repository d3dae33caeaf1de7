// Reads one lunalogs line into its parts. The guide's prefix is
// "[YYYY ]Mon DD HH:MM:SS host  local5 sev  NTLS [pid]: " and its spacing is irregular (doubled
// spaces, "local5  err", "info :  0xc0000002 :", no year on one line, no-break spaces where the
// HTML it came from had doubled spaces), so runs of blanks are accepted in the prefix. The text
// after the level and code is kept as written: the matcher decides what its spaces mean.
import type { Label, Severity } from '../../log/message.js';

export interface ParsedLine {
  /** The timestamp as written ("2012 Feb 29 12:05:01", "Feb 29 12:05:01", or ISO 8601). */
  timestamp: string;
  /** The year, or null when the line has none. */
  year: number | null;
  host: string;
  /** Syslog facility ("local5"), or null when the line has none. */
  facility: string | null;
  /** Syslog severity, normalised to the guide's words; null when the line has none. */
  severity: Severity | null;
  /** The process name before "[pid]" ("NTLS"). */
  process: string;
  pid: number;
  /** Inner level label; null on lines that print none (the guide's bare lines). */
  label: Label | null;
  /** Inner code as a number; null on bare lines. */
  code: number | null;
  /** The code as written ("0", "0xc0000002"); null on bare lines. */
  codeText: string | null;
  /** How the text follows the code: " : " (coded), one space (spaced), several (debug), none (bare). */
  shape: 'coded' | 'spaced' | 'debug' | 'bare';
  /** The message text, after the level and code. */
  text: string;
}

const SEVERITIES: Record<string, Severity> = {
  emerg: 'crit', alert: 'crit', crit: 'crit', critical: 'crit',
  err: 'err', error: 'err',
  warn: 'warn', warning: 'warn', notice: 'info',
  info: 'info', debug: 'debug',
};

const LABELS: Record<string, Label> = {
  critical: 'critical', crit: 'critical', error: 'error', err: 'error',
  warning: 'warning', warn: 'warning', info: 'info', debug: 'debug',
};

/** "crit", "critical", "error", "warning" ... as the guide's syslog severity, or null. */
export function severityOf(word: string): Severity | null {
  return SEVERITIES[word.toLowerCase()] ?? null;
}

const CLASSIC_TIME = String.raw`(?:(\d{4}) +)?([A-Z][a-z]{2} +\d{1,2} +\d\d:\d\d:\d\d)`;
const ISO_TIME = String.raw`(\d{4})-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?`;
// facility and severity are optional: a plain syslog file writes neither.
const REST = String.raw` +(\S+) +(?:(local\d|daemon|user|syslog|auth|authpriv) +(\w+) +)?([^\s\[\]:][^\[\]:]*?) ?\[(\d+)\]: ?(.*)`;
const CLASSIC = new RegExp(`^${CLASSIC_TIME}${REST}$`);
const ISO = new RegExp(`^(${ISO_TIME})${REST}$`);
const INNER = /^(critical|crit|error|err|warning|warn|info|debug) +: +(0|0[xX][0-9a-fA-F]+)( *: *| +)(.*)$/;

/** The parts of a lunalogs line, or null when it is not a syslog line of a process. */
export function parseLine(raw: string): ParsedLine | null {
  const line = raw.replace(/\u00a0/g, ' ').replace(/\r$/, '');
  let year: number | null;
  let timestamp: string;
  let rest: string[];
  const classic = CLASSIC.exec(line);
  if (classic) {
    year = classic[1] ? Number(classic[1]) : null;
    timestamp = (classic[1] ? `${classic[1]} ` : '') + classic[2]!.replace(/ +/g, ' ');
    rest = classic.slice(3);
  } else {
    const iso = ISO.exec(line);
    if (!iso) return null;
    timestamp = iso[1]!;
    year = Number(iso[2]);
    rest = iso.slice(3);
  }
  const [host, facility, severityWord, processName, pid, body] = rest as [string, string | undefined, string | undefined, string, string, string];
  const severity = severityWord === undefined ? null : severityOf(severityWord);
  if (severityWord !== undefined && severity === null) return null;
  const inner = INNER.exec(body);
  const base = { timestamp, year, host, facility: facility ?? null, severity, process: processName.trim(), pid: Number(pid) };
  if (!inner) {
    return { ...base, label: null, code: null, codeText: null, shape: 'bare', text: body };
  }
  const separator = inner[3]!;
  return {
    ...base,
    label: LABELS[inner[1]!.toLowerCase()]!,
    code: Number.parseInt(inner[2]!, inner[2]!.toLowerCase().startsWith('0x') ? 16 : 10),
    codeText: inner[2]!,
    shape: separator.includes(':') ? 'coded' : separator.length === 1 ? 'spaced' : 'debug',
    text: inner[4]!,
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * The line's time as a Date (local time, as the daemon writes it), for ordering; a line without
 * a year is taken in `fallbackYear`. Null when the timestamp cannot be read.
 */
export function timeOf(line: ParsedLine, fallbackYear = new Date().getFullYear()): Date | null {
  const iso = /^\d{4}-/.test(line.timestamp) ? new Date(line.timestamp) : null;
  if (iso) return Number.isNaN(iso.getTime()) ? null : iso;
  const m = /^(?:(\d{4}) )?([A-Z][a-z]{2}) (\d{1,2}) (\d\d):(\d\d):(\d\d)$/.exec(line.timestamp);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return null;
  return new Date(m[1] ? Number(m[1]) : fallbackYear, month, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}
