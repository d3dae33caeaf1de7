// Every example line of the guide, and every footnote variant, is recognised by `explain` as
// its own catalogue entry, with the guide's heading and section. The entry a line should be is
// found here independently of the matcher: the entry whose example renders to the line's text
// with the guide's severity, label and code (as test/log/catalogue.test.ts does).
import { describe, expect, it } from 'vitest';
import { allMessages } from '../../../src/log/catalogue.js';
import { formatCode, renderText, type Message } from '../../../src/log/message.js';
import { explainLine } from '../../../src/admin/logs/explain.js';
import { kindOf } from '../../../src/admin/logs/explanations.js';
import { readGuide, type GuideLine } from '../../log/guide.js';

const guide = readGuide();

/** The guide's line with its editorial marks removed (the daemon never prints them). */
const printed = (line: GuideLine) => line.raw.replace(/\[sic\] /g, '').replace(/(?<=\S)\*{1,2}(?=\s|$)/g, '');

const facts = (m: Message) => ({ severity: m.severity, label: m.shape === 'bare' ? null : m.label, code: m.shape === 'bare' ? null : formatCode(m.code) });
const lineFacts = (l: GuideLine) => ({ severity: l.severity, label: l.label, code: l.code });
const exampleText = (m: Message) => renderText(m, m.example);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether the entry prints `text` with its example values or declared ones. */
function prints(m: Message, text: string): boolean {
  const names = [...m.template.matchAll(/\{(\w+)\}/g)].map((p) => p[1]!);
  const match = new RegExp('^' + escape(m.template).replace(/\\\{(\w+)\\\}/g, '(.+?)') + '$').exec(text);
  if (!match) return false;
  return names.every((name, i) => {
    const value = match[i + 1]!;
    const example = String((m.example as Record<string, string | number>)[name]);
    return value === example || ((m.values as Record<string, readonly string[] | undefined>)[name] ?? []).includes(value);
  });
}

function ownEntry(line: GuideLine, text = line.text): Message {
  const agree = (m: Message) => JSON.stringify(facts(m)) === JSON.stringify(lineFacts(line));
  const found = allMessages.find((m) => exampleText(m) === text && agree(m)) ?? allMessages.find((m) => agree(m) && prints(m, text));
  if (!found) throw new Error(`no catalogue entry for guide line ${line.lineNo}: ${text}`);
  return found;
}

describe('explain recognises every example line of the guide', () => {
  it('reads the whole guide', () => {
    expect(guide.lines.length).toBe(guide.exampleLineCount);
    expect(guide.lines.length).toBeGreaterThan(200);
  });

  it.each(guide.lines.map((l) => [`${l.lineNo}: ${l.text}`, l] as const))('%s', (_name, line) => {
    const explained = explainLine(printed(line), line.lineNo);
    const entry = ownEntry(line);
    expect(explained.status).toBe('recognised');
    expect(explained.id).toBe(entry.id);
    expect(explained.parsed?.text.replace(/\u00a0/g, ' ')).toBe(line.text);
    // The guide's heading of this very line: the entry's own, or one it is also listed under.
    const headings = [`${explained.section} / ${explained.heading}`, ...explained.alsoUnder.map((a) => `${a.section} / ${a.heading}`)];
    expect(headings).toContain(`${line.section} / ${line.heading}`);
    expect(explained.kind).toBe(kindOf(line.section));
    expect(explained.meaning).toBeTruthy();
  });
});

describe('explain recognises every footnote variant', () => {
  const variants = guide.lines.flatMap((l) => l.variants.map((v) => [`${l.lineNo}: ${v.text}`, l, v.text] as const));

  it('has the six variants of the guide', () => expect(variants).toHaveLength(6));

  it.each(variants)('%s', (_name, line, text) => {
    const raw = printed(line).replace(line.text, text);
    const explained = explainLine(raw, 1);
    expect(explained.status).toBe('recognised');
    expect(explained.id).toBe(ownEntry(line, text).id);
  });
});
