// Commander's usage errors as both CLIs end them: one line naming the problem and the help of the
// deepest command the words name (`see \`ntls-client sign --help\``), never commander's own text.
import type { Command, CommanderError } from 'commander';
import { printable } from '../log/printable.js';

/** The words of the command line that name commands, from the program down. */
export function commandPath(program: Command, argv: readonly string[]): string[] {
  const path: string[] = [];
  let at = program;
  for (const word of argv) {
    const next = at.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) break;
    path.push(next.name());
    at = next;
  }
  return path;
}

/** What went wrong, on one line: commander's message, or "no command given" for a group named alone. */
export function usageMessage(error: CommanderError, captured: string): string {
  // commander.help: a command group named without its command (its help is on stderr already).
  // Without a final period: the hint follows after a semicolon.
  return printable((error.code === 'commander.help' ? 'no command given' : captured || error.message).replace(/\s*\n\s*/g, ' ').trim().replace(/\.$/, ''));
}

/** The hint: the help of the command the words name. */
export function helpHint(program: Command, argv: readonly string[]): string {
  const path = commandPath(program, argv);
  return `see \`${program.name()} ${path.length ? path.join(' ') + ' ' : ''}--help\``;
}
