// Output made for people (aligned columns, colour only on a terminal) or, with --json, for scripts.
import { printable } from '../log/printable.js';

export interface OutputOptions {
  json?: boolean;
}

const useColour = () => process.stdout.isTTY === true && !process.env.NO_COLOR;
export const bold = (s: string) => (useColour() ? `\x1b[1m${s}\x1b[0m` : s);

export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cells = rows.map((row) => columns.map((c) => format(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [bold(line(columns.map((c) => c.toUpperCase()))), ...cells.map(line)].join('\n') + '\n';
}

export function fields(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record).map(([k, v]) => `${bold(k.padEnd(width))}  ${format(v)}`).join('\n') + '\n';
}

function format(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length ? value.map(format).join(',') : '-';
  if (typeof value === 'string') return printable(value);
  // People read yes/no; --json keeps true/false.
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number' || typeof value === 'bigint') return value.toString();
  if (typeof value === 'object') return Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}=${format(v)}`).join(' ') || '-';
  return JSON.stringify(value) ?? '-';
}

export function print(result: unknown, options: OutputOptions, human: (r: never) => string): void {
  process.stdout.write(options.json ? JSON.stringify(result, null, 2) + '\n' : human(result as never));
}
