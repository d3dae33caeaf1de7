// How explain, check and tail print for people; --json prints the records themselves.
import { basename } from 'node:path';
import { allMessages } from '../../log/catalogue.js';
import type { CheckSummary, RefusedClient, Where } from './check.js';
import type { ExplainedLine } from './explain.js';
import { sectionIntroductions } from './explanations.js';
import { table, type Paint } from './render.js';

const KIND_WIDTH = 10;
const ID_WIDTH = Math.max(...allMessages.map((m) => m.id.length));

function kindLabel(line: ExplainedLine, paint: Paint): string {
  const word = line.status === 'unknown' ? 'unknown' : line.kind!;
  const padded = word.padEnd(KIND_WIDTH);
  if (line.status === 'unknown') return paint.yellow(padded);
  return line.kind === 'unexpected' ? paint.red(padded) : line.kind === 'debug' ? paint.dim(padded) : paint.green(padded);
}

function head(line: ExplainedLine, paint: Paint, numberWidth: number): string {
  const number = String(line.line).padStart(numberWidth);
  const time = (line.parsed?.timestamp ?? '-').padEnd(20);
  const severity = (line.parsed?.severity ?? '-').padEnd(5);
  return `${paint.dim(number)}  ${time}  ${severity}  ${kindLabel(line, paint)}  ${(line.id ?? '-').padEnd(ID_WIDTH)}`;
}

/** One line of the log, explained: the header row, then the guide's words, indented. */
export function formatExplained(line: ExplainedLine, paint: Paint, numberWidth = 5): string {
  const indent = ' '.repeat(numberWidth + 2);
  const out = [head(line, paint, numberWidth).trimEnd()];
  if (line.status === 'unknown') {
    out.push(`${indent}${line.raw}`);
    out.push(`${indent}${paint.yellow('Unknown:')}     ${line.reason}`);
    return out.join('\n');
  }
  out.push(`${indent}${line.parsed!.text}`);
  out.push(`${indent}${paint.bold(`${line.sectionTitle} / ${line.heading}`)}`);
  if (line.status === 'mismatch') {
    const { expected, found } = line.mismatch!;
    const show = (f: { severity: string | null; label: string | null; code: string | null }) =>
      `${f.severity ?? '-'} ${f.label ?? '(no label)'} ${f.code ?? '(no code)'}`;
    out.push(`${indent}${paint.magenta('Mismatch:')}    the guide prints this text as "${show(expected)}", the line shows "${show(found)}"`);
  }
  const params = Object.entries(line.params);
  if (params.length) out.push(`${indent}Values:      ${params.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  out.push(`${indent}Means:       ${line.meaning ?? '-'}`);
  if (line.note) out.push(`${indent}Note:        ${line.note}`);
  out.push(`${indent}Root cause:  ${line.rootCause ?? 'the guide names none'}`);
  if (line.kind === 'unexpected') out.push(`${indent}Unexpected:  ${sectionIntroductions[line.section!]}`);
  for (const other of line.alsoUnder) {
    out.push(`${indent}Also under:  ${other.heading}: ${other.meaning}${other.rootCause ? ` ${other.rootCause}` : ''}`);
  }
  return out.join('\n');
}

/** One row per line: number, time, severity, kind, id, heading. */
export function formatBrief(line: ExplainedLine, paint: Paint, numberWidth = 5): string {
  const row = head(line, paint, numberWidth);
  if (line.status === 'unknown') return `${row}  ${line.raw}`;
  return `${row}  ${paint.dim(`(${line.heading})`)}${line.status === 'mismatch' ? paint.magenta(' level/code mismatch') : ''}`;
}

const where = (w: Where) => `${w.timestamp ?? '-'} (${w.file === undefined ? '' : `${basename(w.file)} `}line ${w.line})`;

function groupRefused(refused: readonly RefusedClient[]): Array<{ address: string; client: string | null; id: string; count: number; first: Where; last: Where }> {
  const groups = new Map<string, { address: string; client: string | null; id: string; count: number; first: Where; last: Where }>();
  for (const r of refused) {
    const address = r.peer === null ? '-' : r.peer.replace(/\/\d+$/, '');
    const key = JSON.stringify([address, r.client, r.id]);
    const group = groups.get(key);
    if (group) {
      group.count++;
      group.last = r;
    } else {
      groups.set(key, { address, client: r.client, id: r.id, count: 1, first: r, last: r });
    }
  }
  return [...groups.values()];
}

export function formatCheck(summary: CheckSummary, paint: Paint): string {
  const out: string[] = [];
  out.push(`${paint.bold(summary.files.join(', '))}: ${summary.lines} lines, ${summary.recognised} recognised`);

  const unexpectedLines = summary.unexpected.reduce((n, k) => n + k.count, 0);
  out.push('', paint.bold(`Unexpected messages: ${unexpectedLines} in ${summary.unexpected.length} kinds`));
  if (summary.unexpected.length) {
    out.push(...table([
      ['COUNT', 'ID', 'HEADING', 'FIRST', 'LAST'],
      ...summary.unexpected.map((k) => [String(k.count), paint.red(k.id), k.heading, where(k.first), where(k.last)]),
    ], '  '));
  }
  if (summary.ignored.length || summary.refusedIgnored) {
    out.push('', paint.bold(`Ignored (--ignore): ${summary.ignored.reduce((n, k) => n + k.count, 0)} in ${summary.ignored.length} kinds`));
    if (summary.ignored.length) out.push(...table([['COUNT', 'ID', 'HEADING'], ...summary.ignored.map((k) => [String(k.count), k.id, k.heading])], '  '));
    if (summary.refusedIgnored) out.push(`  and ${summary.refusedIgnored} refused client connection(s)`);
  }
  if (summary.mismatches.length) {
    out.push('', paint.bold('Guide text with another level or code'));
    out.push(...table([
      ['COUNT', 'ID', 'GUIDE', 'LINE', 'FIRST'],
      ...summary.mismatches.map((m) => [
        String(m.count), paint.magenta(m.id), `${m.expected.severity} ${m.expected.label ?? '-'} ${m.expected.code}`,
        `${m.found.severity ?? '-'} ${m.found.label ?? '-'} ${m.found.code ?? '-'}`, where(m.first),
      ]),
    ], '  '));
  }

  if (summary.routine.length) {
    out.push('', `Routine (in the guide's unexpected sections, written by every healthy run): ${summary.routine.map((k) => `${k.id} ${k.count}`).join(', ')}`);
  }
  out.push('', paint.bold(`Refused clients: ${summary.refusedClients.length}`));
  if (summary.refusedClients.length) {
    // One row per address, client and reason (a deleted client retrying wrote hundreds of rows).
    out.push(...table([
      ['ADDRESS', 'CLIENT', 'WHY', 'COUNT', 'FIRST', 'LAST'],
      ...groupRefused(summary.refusedClients).map((g) => [g.address, g.client ?? '-', paint.red(g.id), String(g.count), where(g.first), where(g.last)]),
    ], '  '));
  }

  const c = summary.connections;
  out.push('', paint.bold(`Connections: ${c.accepted} accepted, ${c.disconnected} disconnect lines, ${c.paired} paired, ${c.withoutDisconnect.length} without disconnect`));
  if (c.withoutDisconnect.length) {
    out.push(...table([
      ['PEER', 'CLIENT', 'ACCEPTED', 'STATE', 'WHY'],
      ...c.withoutDisconnect.map((o) => [
        o.peer, o.client ?? '-', where(o.accepted), o.state === 'lost' ? paint.red('lost') : paint.yellow('open'),
        o.reason + (o.closedBy ? ` at line ${o.closedBy.line}` : ''),
      ]),
    ], '  '));
  }
  if (c.disconnectWithoutAccept.length) {
    out.push(`  disconnects of peers accepted before this log began: ${c.disconnectWithoutAccept.map((d) => `${d.peer} (${where(d.at)})`).join(', ')}`);
  }

  out.push('', paint.bold(`Receive-timer expiries: ${summary.receiveTimerExpiries.reduce((n, r) => n + r.count, 0)}`));
  if (summary.receiveTimerExpiries.length) {
    out.push(...table([
      ['CLIENT', 'COUNT', 'FIRST', 'LAST', 'PEERS'],
      ...summary.receiveTimerExpiries.map((r) => [r.client, String(r.count), where(r.first), where(r.last), r.peers.join(' ')]),
    ], '  '));
  }

  const crashes = summary.crashes;
  out.push('', paint.bold(`Crashes: ${crashes.lines.length} CRASH AND BURN lines, ${crashes.dumpFiles.length} stack dump files`));
  for (const start of summary.abruptEnds) {
    out.push(`  ${paint.red('the run started')} ${where(start)} ended without its shutdown lines and without a crash line (killed, e.g. kill -9, or the host went down)`);
  }
  for (const line of crashes.lines) {
    const file = line.dumpFile === null ? 'no stack dump' : `${line.dumpFile}${line.dumpFound === null ? '' : line.dumpFound ? ' (in the log folder)' : ' (not in the log folder)'}`;
    out.push(`  ${paint.red('crash')} ${where(line)}: ${file}`);
  }
  for (const dump of crashes.dumpFiles) {
    out.push(`  ${paint.red('dump')}  ${dump.file}  ${dump.bytes} bytes  ${dump.modified}${dump.named ? '' : '  (named by no line of this log)'}`);
  }

  out.push('', paint.bold(`Unknown lines: ${summary.unknown.count}`));
  for (const u of summary.unknown.lines) out.push(`  ${u.file === undefined ? '' : `${basename(u.file)} `}line ${u.line}: ${u.raw}`);
  if (summary.unknown.count > summary.unknown.lines.length) out.push(`  ... and ${summary.unknown.count - summary.unknown.lines.length} more (ntls logs explain shows them all)`);

  out.push('');
  out.push(summary.findings.length
    ? paint.red(`Found: ${summary.findings.join('; ')}.`) + ' Run `ntls logs explain` on the file for what each message means.'
    : paint.green('Nothing unexpected.'));
  return out.join('\n');
}

export function formatTailLine(line: ExplainedLine, paint: Paint): string {
  const severity = line.parsed?.severity ?? null;
  if (severity === 'crit' || severity === 'err') return paint.red(line.raw);
  if (severity === 'warn') return paint.yellow(line.raw);
  if (severity === 'debug') return paint.dim(line.raw);
  return line.raw;
}
