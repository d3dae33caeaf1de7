// A line a peer can cause at will, as often as it sends (an unsupported command), is written for
// each of the first `burst` in a row from one source, then at `perSecond`: one linked client
// wrote 600,000 such lines in 7 s, every rotated file's history gone in 10 s. The calls are
// still answered and counted in the metrics.
export class LineBudget {
  private readonly sources = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst = 10,
    private readonly perSecond = 1,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the line of this source may be written now. */
  take(source: string): boolean {
    const at = this.now();
    const seen = this.sources.get(source);
    const tokens = seen ? Math.min(this.burst, seen.tokens + ((at - seen.at) / 1000) * this.perSecond) : this.burst;
    if (tokens < 1) {
      this.sources.set(source, { tokens, at });
      return false;
    }
    this.sources.set(source, { tokens: tokens - 1, at });
    return true;
  }
}
