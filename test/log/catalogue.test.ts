// The catalogue held against the guide itself (fastify's errors-vs-docs test, for log lines):
// every example line of shared/seed/ntls-log-reference.txt, and every footnote variant, is a
// catalogue entry with the guide's severity, label, code, shape and RC name; and the catalogue
// holds nothing the guide does not show.
import { describe, expect, it } from 'vitest';
import {
  allMessages, Catalogue, connectionStateStrings, hsmCryptoStates, processorEntryPoints,
} from '../../src/log/catalogue.js';
import { formatCode, renderBody, renderText, type Message } from '../../src/log/message.js';
import { formatLine } from '../../src/log/format.js';
import { readGuide, type GuideLine } from './guide.js';

const guide = readGuide();

const PLACEHOLDER = /\{(\w+)\}/g;
const placeholders = (m: Message) => [...m.template.matchAll(PLACEHOLDER)].map((p) => p[1]!);
const exampleText = (m: Message) => renderText(m, m.example);

/** What the guide line says about the entry that prints it. */
function guideFacts(line: GuideLine) {
  return line.shape === 'bare'
    ? { severity: line.severity, shape: 'bare', code: '0' }
    : { severity: line.severity, label: line.label, code: line.code, shape: line.shape };
}

function entryFacts(m: Message, bare: boolean) {
  return bare
    ? { severity: m.severity, shape: m.shape, code: formatCode(m.code) }
    : { severity: m.severity, label: m.label, code: formatCode(m.code), shape: m.shape };
}

const agrees = (m: Message, line: GuideLine) =>
  JSON.stringify(entryFacts(m, line.shape === 'bare')) === JSON.stringify(guideFacts(line));

const byExampleText = new Map<string, Message[]>();
for (const m of allMessages) {
  const text = exampleText(m);
  byExampleText.set(text, [...(byExampleText.get(text) ?? []), m]);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Whether the entry prints this text with each placeholder taking its example value or one of
 * the closed set of values the entry declares (entry points, "disabled", state strings).
 */
function prints(m: Message, text: string): boolean {
  return paramsFor(m, text) !== null;
}

/** The placeholder values with which the entry prints the text, or null. */
function paramsFor(m: Message, text: string): Record<string, string> | null {
  const names = placeholders(m);
  const pattern = new RegExp('^' + escape(m.template).replace(/\\\{(\w+)\\\}/g, '(.+?)') + '$');
  const match = pattern.exec(text);
  if (!match) return null;
  const example = m.example as Record<string, string | number>;
  const values = m.values as Record<string, readonly string[] | undefined>;
  const params: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    const value = match[i + 1]!;
    if (value !== String(example[name]) && !(values[name] ?? []).includes(value)) return null;
    params[name] = value;
  }
  return params;
}

/**
 * The entry for a guide line: the one whose example renders to the line's text with the
 * guide's facts; failing that, one that prints it with a declared value ("cp_shutdown function
 * not found ..."). `candidates` are entries with the same text, whatever their facts.
 */
function entryFor(line: GuideLine): { entry: Message | undefined; candidates: Message[] } {
  let candidates = byExampleText.get(line.text) ?? [];
  if (!candidates.length) candidates = allMessages.filter((m) => Object.keys(m.values).length && prints(m, line.text));
  return { entry: candidates.find((m) => agrees(m, line)), candidates };
}

/** Entries holding a footnote variant of a guide line, with the line's facts. */
function variantEntries(line: GuideLine, variantText: string): Message[] {
  return allMessages.filter((m) => agrees(m, line) && prints(m, variantText));
}

describe('the guide as read by the test', () => {
  it('parses every example line of the guide', () => {
    expect(guide.exampleLineCount).toBeGreaterThan(200);
    expect(guide.lines).toHaveLength(guide.exampleLineCount);
  });

  it('reads the line without a year ("Feb 29 12:05:01 myLuna ...")', () => {
    const yearless = guide.lines.filter((l) => l.year === null);
    expect(yearless.map((l) => l.text)).toEqual(['luna_engine_preload: failed to load']);
    expect(guide.lines.filter((l) => l.year !== null).every((l) => l.year === 2012)).toBe(true);
  });

  it('drops the editorial marks and expands the footnote variants', () => {
    expect(guide.lines.some((l) => /\[sic\]|\*/.test(l.text))).toBe(false);
    const crypto = guide.lines.find((l) => l.text.startsWith('HSM crypto support'))!;
    expect(crypto.text).toBe('HSM crypto support for data path SSL operations enabled');
    expect(crypto.variants.map((v) => v.text).sort()).toEqual([
      'HSM crypto support for NTLS SSL operations NOT enabled',
      'HSM crypto support for NTLS SSL operations disabled',
      'HSM crypto support for NTLS SSL operations enabled',
      'HSM crypto support for data path SSL operations NOT enabled',
      'HSM crypto support for data path SSL operations disabled',
    ]);
    const socket = guide.lines.find((l) => l.text.startsWith('Unable to initialize data path server socket'))!;
    expect(socket.variants.map((v) => v.text)).toEqual(['Unable to initialize NTLS server socket : RC_SOCKET_ERROR']);
    // Footnotes that explain rather than reword make no variant.
    const timer = guide.lines.filter((l) => l.text.startsWith('Receive timer expired'));
    expect(timer).toHaveLength(2);
    expect(timer.every((l) => l.variants.length === 0)).toBe(true);
  });

  it('sees all four shapes', () => {
    expect(new Set(guide.lines.map((l) => l.shape))).toEqual(new Set(['coded', 'spaced', 'debug', 'bare']));
  });
});

describe('every guide line is a catalogue entry', () => {
  it.each(guide.lines.map((l) => [`${l.lineNo}: ${l.text}`, l] as const))('%s', (_name, line) => {
    const { entry, candidates } = entryFor(line);
    expect(candidates.map((m) => m.id), `no entry renders its example to: ${line.text}`).not.toHaveLength(0);
    // Same text, different facts: show the nearest entry's facts against the guide's.
    expect(entry ? entryFacts(entry, line.shape === 'bare') : entryFacts(candidates[0]!, line.shape === 'bare'))
      .toEqual(guideFacts(line));
    // The RC_ / LUNA_RET_ name the guide shows is the entry's, and is fixed text of the
    // template (a fixed code goes with a fixed name), not a parameter.
    expect(entry!.rc).toBe(line.rcNames.at(-1) ?? null);
    for (const rc of line.rcNames) expect(entry!.template).toContain(rc);
  });

  it('renders each guide line, prefix included, as the guide prints it', () => {
    // The guide's prefix spacing is irregular; compare with runs of spaces folded in the
    // prefix only, and the text exactly.
    const fold = (prefix: string) => prefix.replace(/ +/g, ' ');
    for (const line of guide.lines) {
      const entry = entryFor(line).entry!;
      const body = renderBody(entry, paramsFor(entry, line.text)!);
      expect(body.endsWith(line.text), `line ${line.lineNo}`).toBe(true);
      const raw = line.raw.replace(/\u00a0/g, ' ').replace(/\[sic\] /g, '').replace(/(?<=\S)\*{1,2}(?=\s|$)/g, '');
      const at = raw.indexOf(line.text, raw.indexOf('NTLS [1234]:'));
      const printed = formatLine(new Date(2012, 1, 29, 12, 5, 1), { host: 'myLuna', pid: 1234 }, entry.severity, body);
      const ours = printed.slice(0, printed.length - line.text.length);
      const theirs = raw.slice(0, at);
      expect(fold(ours), `line ${line.lineNo}`).toBe(fold(line.year === null ? `2012 ${theirs}` : theirs));
    }
  });
});

describe('every footnote variant is a catalogue entry', () => {
  const variants = guide.lines.flatMap((line) => line.variants.map((v) => [`${line.lineNo}: ${v.text}`, line, v.text] as const));

  it('the guide has the variants this test knows of', () => {
    expect(variants.length).toBe(6);
  });

  it.each(variants)('%s', (_name, line, text) => {
    expect(variantEntries(line, text).map((m) => m.id), `no entry holds the variant: ${text}`).not.toHaveLength(0);
  });

  it('the older wording has entries of its own', () => {
    expect(exampleText(Catalogue.hsmCryptoSupportOlder)).toBe('HSM crypto support for NTLS SSL operations enabled');
    expect(exampleText(Catalogue.serverSocketInitFailedOlder)).toBe('Unable to initialize NTLS server socket : RC_SOCKET_ERROR');
    for (const state of ['enabled', 'disabled', 'NOT enabled']) {
      expect(renderText(Catalogue.hsmCryptoSupport, { state })).toBe(`HSM crypto support for data path SSL operations ${state}`);
      expect(renderText(Catalogue.hsmCryptoSupportOlder, { state })).toBe(`HSM crypto support for NTLS SSL operations ${state}`);
    }
  });
});

describe('the catalogue holds only what the guide shows', () => {
  // For each entry, the guide lines (or variants) it prints.
  const sources = new Map<string, GuideLine[]>();
  for (const line of guide.lines) {
    const entry = entryFor(line).entry;
    if (entry) sources.set(entry.id, [...(sources.get(entry.id) ?? []), line]);
    for (const v of line.variants) {
      for (const m of variantEntries(line, v.text)) sources.set(m.id, [...(sources.get(m.id) ?? []), line]);
    }
  }

  it.each(allMessages.map((m) => [m.id, m] as const))('%s', (id, m) => {
    const lines = sources.get(id) ?? [];
    expect(lines.map((l) => l.lineNo), `${id} ("${m.template}") is no guide line or footnote variant`).not.toHaveLength(0);
    // Filed under the guide's heading and section of one of the lines it prints.
    expect(lines.map((l) => `${l.section} / ${l.heading}`)).toContain(`${m.section} / ${m.heading}`);
    // A catalogued RC name is shown by the guide, in the text.
    if (m.rc) {
      expect(m.template).toContain(m.rc);
      expect(lines.some((l) => l.rcNames.includes(m.rc!))).toBe(true);
    }
  });

  it('closed value sets are the guide\'s own', () => {
    const entryPoints = guide.lines
      .filter((l) => entryFor(l).entry?.id === 'processorEntryPointMissing')
      .map((l) => l.text.split(' ')[0]);
    expect(entryPoints).toEqual([...processorEntryPoints]);
    const crypto = guide.lines.find((l) => l.text.startsWith('HSM crypto support'))!;
    expect([...hsmCryptoStates]).toEqual(['enabled', ...crypto.alternatives.filter((a) => a !== 'NTLS')]);
    expect(guide.stateStrings).toHaveLength(9);
    expect([...connectionStateStrings]).toEqual(guide.stateStrings);
    // Every declared set belongs to a placeholder of the entry's template.
    for (const m of allMessages) {
      for (const name of Object.keys(m.values)) expect(placeholders(m), m.id).toContain(name);
    }
  });

  it('examples fill exactly the placeholders of their template', () => {
    for (const m of allMessages) {
      expect(Object.keys(m.example).sort(), m.id).toEqual([...new Set(placeholders(m))].sort());
      expect(exampleText(m), m.id).not.toMatch(PLACEHOLDER);
    }
  });

  it('no two entries print the same line', () => {
    const seen = new Map<string, string>();
    for (const m of allMessages) {
      const key = JSON.stringify([m.template, m.severity, m.label, m.code, m.shape]);
      expect(seen.get(key), `${m.id} duplicates ${seen.get(key)}`).toBeUndefined();
      seen.set(key, m.id);
    }
  });

  it('ids are the catalogue keys', () => {
    for (const [id, m] of Object.entries(Catalogue)) expect(m.id).toBe(id);
  });
});
