// Finds the guide message a log line is. Built once from the catalogue: each template becomes a
// regular expression (placeholders turn into non-greedy captures, or into the closed set of
// values the catalogue declares), indexed by the template's first word so a line is tried
// against a handful of templates, not all of them. The text decides which message it is; the
// severity, label and code then either agree with the guide or are reported as a mismatch.
import { allMessages } from '../../log/catalogue.js';
import { formatCode, type Message, type Severity } from '../../log/message.js';
import type { ParsedLine } from './line.js';

export interface Mismatch {
  /** What the guide prints for this text. */
  expected: { severity: Severity; label: string | null; code: string };
  /** What the line shows. */
  found: { severity: Severity | null; label: string | null; code: string | null };
}

export type MatchResult =
  | { status: 'recognised'; message: Message; params: Record<string, string> }
  | { status: 'mismatch'; message: Message; params: Record<string, string>; mismatch: Mismatch }
  | { status: 'unknown' };

interface Compiled {
  message: Message;
  /** Exact: the template's own spacing. */
  exact: RegExp;
  /** Tolerant: any run of blanks where the template has blanks, trailing blanks ignored. */
  loose: RegExp;
  names: string[];
  /** Characters of fixed text: more is more specific. */
  literalLength: number;
}

const PLACEHOLDER = /\{(\w+)\}/g;
const FREE_TEXT = new Set(['module', 'label', 'file', 'ciphers']);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function capture(message: Message, name: string): string {
  const values = (message.values as Record<string, readonly string[] | undefined>)[name];
  const example = (message.example as Record<string, string | number>)[name];
  if (values?.length) {
    // The closed set, plus the guide's own example ("<state string>").
    const all = [...new Set([...values, String(example)])].sort((a, b) => b.length - a.length);
    return `(${all.map(escape).join('|')})`;
  }
  // A value the guide shows without blanks (a peer, a client name, a version, a number) is one
  // word; that keeps "module version {version} : ..." from swallowing a longer message's text.
  // Names, labels and paths may hold blanks.
  if (FREE_TEXT.has(name) || /\s/.test(String(example))) return '(.+?)';
  return '(\\S+?)';
}

function compile(message: Message, loose: boolean): { source: string; names: string[] } {
  const names: string[] = [];
  let source = '';
  let last = 0;
  const literal = (text: string) => (loose ? escape(text).replace(/ +/g, ' +') : escape(text));
  for (const m of message.template.matchAll(PLACEHOLDER)) {
    source += literal(message.template.slice(last, m.index));
    const name = m[1]!;
    const earlier = names.indexOf(name);
    // A placeholder used twice ("Open Access : ... {peer} ... {peer}") is the same value twice.
    source += earlier >= 0 ? `\\${earlier + 1}` : capture(message, name);
    if (earlier < 0) names.push(name);
    last = m.index + m[0].length;
  }
  source += literal(message.template.slice(last));
  if (loose) source = source.replace(/( \+)+$/, '') + ' *';
  return { source: `^${source}$`, names };
}

function firstWord(text: string): string | null {
  const m = /^([^\s{]+)(?:\s|$)/.exec(text);
  return m ? m[1]!.toLowerCase() : null;
}

/** How many of severity, label and code agree (to name the nearest message of a mismatch). */
function closeness(message: Message, line: ParsedLine): number {
  const bare = message.shape === 'bare';
  return (line.severity === null || line.severity === message.severity ? 1 : 0) +
    ((bare ? line.label === null : line.label === message.label) ? 1 : 0) +
    ((bare ? line.code === null || line.code === 0 : line.code === message.code) ? 1 : 0);
}

/** Whether the line's level and code are the guide's for this message. */
function agrees(message: Message, line: ParsedLine): boolean {
  if (line.severity !== null && line.severity !== message.severity) return false;
  if (message.shape === 'bare') return line.label === null;
  return line.label === message.label && line.code === message.code;
}

export class Matcher {
  private readonly byWord = new Map<string, Compiled[]>();
  /** Templates that begin with a placeholder: tried on every line. */
  private readonly open: Compiled[] = [];

  constructor(messages: readonly Message[] = allMessages) {
    for (const message of messages) {
      const exact = compile(message, false);
      const loose = compile(message, true);
      const compiled: Compiled = {
        message,
        exact: new RegExp(exact.source),
        loose: new RegExp(loose.source),
        names: exact.names,
        literalLength: message.template.replace(PLACEHOLDER, '').length,
      };
      const word = firstWord(message.template);
      if (word === null) this.open.push(compiled);
      else this.byWord.set(word, [...(this.byWord.get(word) ?? []), compiled]);
    }
  }

  /** The guide message this line is, with the values of its placeholders. */
  match(line: ParsedLine): MatchResult {
    const word = firstWord(line.text);
    const candidates = [...(word === null ? [] : this.byWord.get(word) ?? []), ...this.open];
    let best: { compiled: Compiled; params: Record<string, string>; rank: number[] } | null = null;
    for (const compiled of candidates) {
      let exact = true;
      let m = compiled.exact.exec(line.text);
      if (!m) {
        exact = false;
        m = compiled.loose.exec(line.text);
      }
      if (!m) continue;
      const params: Record<string, string> = {};
      compiled.names.forEach((name, i) => (params[name] = m[i + 1]!));
      // Agreement first (or, failing it, the nearest level and code), then the template's own
      // spacing, then the most fixed text.
      const rank = [agrees(compiled.message, line) ? 1 : 0, closeness(compiled.message, line), exact ? 1 : 0, compiled.literalLength];
      if (!best || compareRanks(rank, best.rank) > 0) best = { compiled, params, rank };
    }
    if (!best) return { status: 'unknown' };
    const message = best.compiled.message;
    if (best.rank[0] === 1) return { status: 'recognised', message, params: best.params };
    return {
      status: 'mismatch', message, params: best.params,
      mismatch: {
        expected: { severity: message.severity, label: message.shape === 'bare' ? null : message.label, code: formatCode(message.code) },
        found: { severity: line.severity, label: line.label, code: line.code === null ? null : formatCode(line.code) },
      },
    };
  }
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

let shared: Matcher | null = null;

/** The matcher over the whole catalogue, built on first use. */
export function catalogueMatcher(): Matcher {
  shared ??= new Matcher();
  return shared;
}
