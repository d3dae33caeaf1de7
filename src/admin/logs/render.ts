// Output for people: colour only on a terminal (and never with NO_COLOR), aligned columns.

export interface Paint {
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  magenta(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

const colours: Paint = {
  red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), magenta: wrap(35, 39), dim: wrap(2, 22), bold: wrap(1, 22),
};
const plain: Paint = { red: (s) => s, green: (s) => s, yellow: (s) => s, magenta: (s) => s, dim: (s) => s, bold: (s) => s };

export function paintFor(stream: NodeJS.WriteStream): Paint {
  const wanted = stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
  return wanted ? colours : plain;
}

/** Rows padded to their columns' widths (the last column is not padded). */
export function table(rows: string[][], indent = ''): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : pad(cell, widths[i]!))).join('  ').trimEnd());
}

// eslint-disable-next-line no-control-regex -- the escape is what is being stripped
const ANSI = /\u001b\[\d+m/g;
const visibleLength = (s: string) => s.replace(ANSI, '').length;
const pad = (s: string, width: number) => s + ' '.repeat(Math.max(0, width - visibleLength(s)));
