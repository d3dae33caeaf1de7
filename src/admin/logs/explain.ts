// `ntls logs explain`: each line of a log, said as the guide says it — which message it is,
// whether the guide expects it, what it means and its likely root cause.
import { formatCode, type Section } from '../../log/message.js';
import { explanationsOf, kindOf, sectionTitles, type Kind } from './explanations.js';
import { parseLine, type ParsedLine } from './line.js';
import { catalogueMatcher, type Matcher, type Mismatch } from './matcher.js';

export interface ExplainedLine {
  /** 1-based line number in the input. */
  line: number;
  raw: string;
  /** recognised: a guide message; mismatch: its text, with another level or code; unknown: neither. */
  status: 'recognised' | 'mismatch' | 'unknown';
  parsed: ParsedLine | null;
  /** Catalogue id, e.g. "connectionAccepted"; null when unknown. */
  id: string | null;
  heading: string | null;
  section: Section | null;
  sectionTitle: string | null;
  kind: Kind | null;
  /** The guide's severity, label, code and RC name of the message. */
  reference: { severity: string; label: string | null; code: string; rc: string | null } | null;
  params: Record<string, string>;
  meaning: string | null;
  rootCause: string | null;
  /** Footnote of the guide about this very message. */
  note: string | null;
  /** Other headings the guide shows the same message under. */
  alsoUnder: { section: Section; heading: string; meaning: string; rootCause: string | null }[];
  mismatch: Mismatch | null;
  /** Why an unknown line is unknown. */
  reason: string | null;
}

export function explainLine(raw: string, lineNo: number, matcher: Matcher = catalogueMatcher()): ExplainedLine {
  const parsed = parseLine(raw);
  const empty = {
    line: lineNo, raw, parsed, id: null, heading: null, section: null, sectionTitle: null, kind: null, reference: null,
    params: {}, meaning: null, rootCause: null, note: null, alsoUnder: [], mismatch: null,
  };
  if (!parsed) return { ...empty, status: 'unknown', reason: 'not a syslog line of the form "<date> <host> local5 <severity> <process> [<pid>]: ..."' };
  const result = matcher.match(parsed);
  if (result.status === 'unknown') return { ...empty, status: 'unknown', reason: 'no message of the guide has this text' };
  const { message } = result;
  const [own, ...others] = explanationsOf(message);
  return {
    line: lineNo, raw, parsed, status: result.status,
    id: message.id, heading: message.heading, section: message.section, sectionTitle: sectionTitles[message.section],
    kind: kindOf(message.section),
    reference: {
      severity: message.severity, label: message.shape === 'bare' ? null : message.label, code: formatCode(message.code), rc: message.rc,
    },
    params: result.params,
    meaning: own?.meaning ?? null,
    rootCause: own?.rootCause ?? null,
    note: own?.notes?.[message.id as keyof typeof own.notes] ?? null,
    alsoUnder: others.map((e) => ({ section: e.section, heading: e.heading, meaning: e.meaning, rootCause: e.rootCause })),
    mismatch: result.status === 'mismatch' ? result.mismatch : null,
    reason: null,
  };
}
