// `ntls --home H partition list`, `ntls-client --json verify`: the options every command takes,
// given before the command words, are moved after them, where commander looks for them (each
// command declares them itself). Anything else before the command is left for commander to refuse.

/** The shared options: `flags` take no value, `valued` take the next word (or `=value`). */
export interface SharedOptions {
  flags: readonly string[];
  valued: readonly string[];
}

export function sharedOptionsLast(args: readonly string[], shared: SharedOptions): string[] {
  const moved: string[] = [];
  let i = 0;
  while (i < args.length) {
    const word = args[i]!;
    const name = word.split('=')[0]!;
    if (shared.flags.includes(word)) {
      moved.push(word);
      i += 1;
    } else if (shared.valued.includes(name) && (word.includes('=') || i + 1 < args.length)) {
      const take = word.includes('=') ? 1 : 2;
      moved.push(...args.slice(i, i + take));
      i += take;
    } else {
      break;
    }
  }
  // Nothing but shared options (no command): left as given, for commander's own answer.
  if (moved.length === 0 || i === args.length) return [...args];
  return [...args.slice(i), ...moved];
}
