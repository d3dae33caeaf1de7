// A test-only reader of the log-message guide (shared/seed/ntls-log-reference.txt). It knows
// nothing of the catalogue: it turns every example line of the guide into the facts the
// catalogue must agree with (severity, label, code, shape, text, heading, section, footnote
// variants), so the catalogue test compares two independent readings of the guide.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GUIDE_NAME = join('shared', 'seed', 'ntls-log-reference.txt');

/**
 * The guide is the project's specification; a copy is kept in docs/reference/ so a clone
 * alone can hold the catalogue against it. When the original (`shared/` beside the repository)
 * is found above this file, the copy must be identical to it. NTLS_GUIDE overrides both.
 */
export function locateGuide(): string {
  if (process.env.NTLS_GUIDE) return process.env.NTLS_GUIDE;
  const here = dirname(fileURLToPath(import.meta.url));
  const copy = join(here, '..', '..', 'docs', 'reference', 'ntls-log-reference.txt');
  let dir = here;
  for (let up = 0; up < 8; up++) {
    const candidate = join(dir, GUIDE_NAME);
    if (existsSync(candidate)) {
      if (existsSync(copy) && !readFileSync(candidate).equals(readFileSync(copy))) {
        throw new Error(`${copy} differs from ${candidate}: copy the guide again`);
      }
      return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (existsSync(copy)) return copy;
  throw new Error(`${GUIDE_NAME} not found above ${here} and no copy at ${copy}; set NTLS_GUIDE`);
}

export type GuideShape = 'coded' | 'spaced' | 'debug' | 'bare';
export type GuideSection =
  | 'datapath-expected' | 'datapath-unexpected' | 'datapath-debug'
  | 'processor-expected' | 'processor-unexpected' | 'processor-debug';

export interface GuideLine {
  /** 1-based line number in the guide. */
  lineNo: number;
  raw: string;
  /** The year, or null where the guide's line lacks it ("Feb 29 12:05:01 myLuna ..."). */
  year: number | null;
  severity: string;
  /** Inner level label; null on bare lines. */
  label: string | null;
  /** Code as printed ("0", "0xc0000002"); null on bare lines. */
  code: string | null;
  shape: GuideShape;
  /** The message text with the editorial marks removed, otherwise to the letter. */
  text: string;
  /** Footnote variants of the text (older wording, "disabled" / "NOT enabled"). */
  variants: GuideVariant[];
  /** Words a variant may put where the base text has its own (for placeholder checks). */
  alternatives: string[];
  /** RC_ / LUNA_RET_ names the line shows. */
  rcNames: string[];
  heading: string;
  section: GuideSection;
}

export interface GuideVariant {
  text: string;
  footnote: string;
}

const TOP_SECTIONS: Record<string, 'datapath-expected' | 'datapath-unexpected' | 'processor-expected' | 'processor-unexpected'> = {
  'Datapath: Expected Log Messages': 'datapath-expected',
  'Datapath: Unexpected Log Messages': 'datapath-unexpected',
  'Luna Network HSM 7 Command Processor: Expected Log Messages': 'processor-expected',
  'Luna Network HSM 7 Command Processor: Unexpected Log Messages': 'processor-unexpected',
};

// Prefix: "[YYYY ]Mon DD HH:MM:SS host  local5 sev  NTLS [1234]: ". Spacing in the guide's
// prefix is irregular ("local5  err", "info :  0xc0000002 :"), so runs of spaces match here;
// the text after the prefix is taken as it is.
const PREFIX = /^(?:(\d{4}) )?([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) +(\S+) +local5 +(\S+) +NTLS \[1234\]: (.*)$/;
const INNER = /^(critical|error|warning|info|debug) +: +(0|0x[0-9a-f]+)( *: +| +)(.*)$/;
const MARK = /(?<=\S)(\*{1,2})(?=\s|$)/g;
const SIC = /\[sic\] /g;
const QUOTED = /["“”]([^"“”]+)["“”]/g;
const RC_NAME = /\b(?:RC|LUNA_RET)_[A-Z0-9_]+\b/g;

/**
 * The older wording footnote ("“NTLS” in older implementations") names the word that stood
 * where the guide's line now says "data path": the mark follows that phrase in both places the
 * guide uses it (asserted while reading).
 */
const OLDER_PHRASE = 'data path';

interface Footnote {
  mark: string;
  text: string;
}

type Rule = { kind: 'older'; replacement: string } | { kind: 'or'; alternatives: string[] } | { kind: 'note' };

function ruleOf(footnote: Footnote): Rule {
  const quoted = [...footnote.text.matchAll(QUOTED)].map((m) => m[1]!);
  if (/^["“”][^"“”]+["“”] in older implementations\.?$/.test(footnote.text)) {
    return { kind: 'older', replacement: quoted[0]! };
  }
  if (/^Or /.test(footnote.text)) {
    // "Or “disabled” or “NOT enabled” if ... (“luna_engine_load: ...”)": the quoted words
    // before " if " replace the last word before the mark.
    const head = footnote.text.slice(0, footnote.text.indexOf(' if '));
    return { kind: 'or', alternatives: [...head.matchAll(QUOTED)].map((m) => m[1]!) };
  }
  return { kind: 'note' }; // "This message results if ...", "For older implementations."
}

/** The text with its marks removed, and every combination of the marks' footnote variants. */
function expand(markedText: string, footnotes: Footnote[]): { text: string; variants: GuideVariant[]; alternatives: string[] } {
  const pieces = markedText.split(MARK); // text, mark, text, mark, ..., text
  const text = pieces.filter((_, i) => i % 2 === 0).join('');
  // Each mark: the ways its preceding piece may end.
  let combos: { text: string; notes: string[] }[] = [{ text: '', notes: [] }];
  const alternatives: string[] = [];
  for (let i = 0; i < pieces.length; i += 2) {
    const piece = pieces[i]!;
    const mark = pieces[i + 1];
    const options: { text: string; note: string | null }[] = [{ text: piece, note: null }];
    if (mark) {
      const footnote = footnotes.find((f) => f.mark === mark);
      if (!footnote) throw new Error(`mark ${mark} in "${markedText}" has no footnote`);
      const rule = ruleOf(footnote);
      if (rule.kind === 'older') {
        if (!piece.endsWith(OLDER_PHRASE)) throw new Error(`older-wording mark after "${piece}", expected "${OLDER_PHRASE}"`);
        options.push({ text: piece.slice(0, -OLDER_PHRASE.length) + rule.replacement, note: footnote.text });
        alternatives.push(rule.replacement);
      } else if (rule.kind === 'or') {
        const lastWord = /\S+$/.exec(piece)![0];
        for (const alternative of rule.alternatives) {
          options.push({ text: piece.slice(0, -lastWord.length) + alternative, note: footnote.text });
          alternatives.push(alternative);
        }
      }
    }
    combos = combos.flatMap((c) => options.map((o) => ({
      text: c.text + o.text,
      notes: o.note ? [...c.notes, o.note] : c.notes,
    })));
  }
  const variants = combos
    .filter((c) => c.notes.length > 0)
    .map((c) => ({ text: c.text, footnote: c.notes.join(' / ') }));
  return { text, variants, alternatives };
}

export interface Guide {
  file: string;
  lines: GuideLine[];
  /** The set a debug line's `<state string>` stands for, as the guide lists it. */
  stateStrings: string[];
  /** Lines containing "NTLS [1234]:", parsed or not: the count the parse must reach. */
  exampleLineCount: number;
}

export function readGuide(file = locateGuide()): Guide {
  // The guide was converted from HTML: a doubled space is written as a no-break space and a
  // space ("SUCCESSFULLY\u00a0 loaded"). The daemon writes plain spaces, so U+00A0 reads as
  // one space, in the text too; runs of spaces are kept inside the text.
  const all = readFileSync(file, 'utf8').replace(/\u00a0/g, ' ').split(/\r?\n/);
  const lines: GuideLine[] = [];
  let top: GuideLine['section'] | null = null;
  let heading = '';
  let lastNonEmpty = '';
  let block: { line: GuideLine; marked: string }[] = [];

  // Footnotes follow their block; a block's lines are finished when the next block starts.
  const finishBlock = (footnotes: Footnote[]) => {
    for (const { line, marked } of block) {
      const { text, variants, alternatives } = expand(marked, footnotes);
      line.text = text;
      line.variants = variants;
      line.alternatives = alternatives;
      lines.push(line);
    }
    block = [];
  };
  let footnotes: Footnote[] = [];
  let previousWasExample = false;

  all.forEach((rawLine, index) => {
    const lineNo = index + 1;
    const trimmed = rawLine.trim();
    if (rawLine.includes('NTLS [1234]:')) {
      if (!previousWasExample) {
        // A new block: the last block is complete with its footnotes; the line above is the heading.
        finishBlock(footnotes);
        footnotes = [];
        heading = lastNonEmpty;
      }
      previousWasExample = true;
      const prefix = PREFIX.exec(rawLine);
      if (!prefix) throw new Error(`guide line ${lineNo} does not parse: ${rawLine}`);
      if (!top) throw new Error(`guide line ${lineNo} comes before any section`);
      const [, year, , , , , severity, body] = prefix;
      const inner = INNER.exec(body!);
      const section: GuideSection = /Debug Messages$/.test(heading)
        ? (top.startsWith('datapath') ? 'datapath-debug' : 'processor-debug')
        : top;
      const marked = (inner ? inner[4]! : body!).replace(SIC, '');
      const line: GuideLine = {
        lineNo,
        raw: rawLine,
        year: year ? Number(year) : null,
        severity: severity!,
        label: inner ? inner[1]! : null,
        code: inner ? inner[2]! : null,
        shape: !inner ? 'bare' : inner[3]!.includes(':') ? 'coded' : inner[3]!.length === 1 ? 'spaced' : 'debug',
        text: '',
        variants: [],
        alternatives: [],
        rcNames: [...marked.matchAll(RC_NAME)].map((m) => m[0]),
        heading,
        section,
      };
      block.push({ line, marked });
      return;
    }
    if (!trimmed) return;
    previousWasExample = false;
    const footnote = /^(\*{1,2}) (.*)$/.exec(trimmed);
    if (footnote && block.length) {
      footnotes.push({ mark: footnote[1]!, text: footnote[2]!.trim() });
      return;
    }
    if (trimmed in TOP_SECTIONS) {
      finishBlock(footnotes);
      footnotes = [];
      top = TOP_SECTIONS[trimmed]!;
    }
    lastNonEmpty = trimmed;
  });
  finishBlock(footnotes);

  const exampleLineCount = all.filter((l) => l.includes('NTLS [1234]:')).length;
  const stateSet = /<state string> is one of the following set: \[([^\]]+)\]/.exec(all.join('\n'));
  const stateStrings = stateSet ? stateSet[1]!.split('|').map((s) => s.trim()) : [];
  return { file, lines, stateStrings, exampleLineCount };
}
