// The explanations are the guide's own sentences, and every catalogue entry has one under its
// own heading.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allMessages } from '../../../src/log/catalogue.js';
import { explanations, explanationsOf, kindOf, sectionIntroductions } from '../../../src/admin/logs/explanations.js';
import { locateGuide, readGuide } from '../../log/guide.js';

const fold = (s: string) => s.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
const guideText = fold(readFileSync(locateGuide(), 'utf8'));
const guide = readGuide();

/** Sentences of a paragraph (the guide's own punctuation; "e.g.," and "i.e.," do not end one). */
function sentences(paragraph: string): string[] {
  return paragraph.split(/(?<=[.!?])\s+(?=[A-Z])/).filter(Boolean);
}

describe('explanations', () => {
  it('every catalogue entry is explained under its own section and heading', () => {
    for (const m of allMessages) {
      const [own] = explanationsOf(m);
      expect(own, m.id).toBeDefined();
      expect(`${own!.section} / ${own!.heading}`, m.id).toBe(`${m.section} / ${m.heading}`);
    }
  });

  it('explains only catalogue entries, each group under a heading the guide has', () => {
    const ids = new Set(allMessages.map((m) => m.id));
    const guideHeadings = new Set(guide.lines.map((l) => `${l.section} / ${l.heading}`));
    for (const e of explanations) {
      for (const id of e.ids) expect(ids.has(id), id).toBe(true);
      expect(guideHeadings.has(`${e.section} / ${e.heading}`), e.heading).toBe(true);
    }
  });

  it('each group lists the entries of the guide lines under its heading', () => {
    // Two groups share "Client Credentials Cannot be Verified" in one section: compare per section/heading.
    const byHeading = new Map<string, Set<string>>();
    for (const e of explanations) {
      const key = `${e.section} / ${e.heading}`;
      byHeading.set(key, new Set([...(byHeading.get(key) ?? []), ...e.ids]));
    }
    for (const line of guide.lines) {
      expect(byHeading.has(`${line.section} / ${line.heading}`), `${line.lineNo}`).toBe(true);
    }
  });

  it('every sentence is the guide\'s', () => {
    for (const e of explanations) {
      for (const text of [e.meaning, e.rootCause, ...Object.values(e.notes ?? {})]) {
        if (!text) continue;
        for (const sentence of sentences(text)) expect(guideText, `${e.heading}: ${sentence}`).toContain(fold(sentence));
      }
    }
    for (const intro of Object.values(sectionIntroductions)) {
      for (const sentence of sentences(intro)) expect(guideText).toContain(fold(sentence));
    }
  });

  it('root causes are the guide\'s "possible root cause" sentences', () => {
    const causes = guideText.match(/(?:A possible root cause|Possible root causes)[^.]*(?:\([^)]*\))?[^.]*\./g) ?? [];
    expect(causes.length).toBeGreaterThanOrEqual(7);
    const ours = explanations.map((e) => e.rootCause).filter((c): c is string => c !== null).map(fold);
    for (const cause of causes) expect(ours.some((c) => c.includes(cause)), cause).toBe(true);
  });

  it('expected, unexpected and debug follow the section', () => {
    expect(kindOf('datapath-expected')).toBe('expected');
    expect(kindOf('processor-unexpected')).toBe('unexpected');
    expect(kindOf('processor-debug')).toBe('debug');
  });
});
