// A line a peer causes at will: the first ten in a row of a source, then one a second.
import { describe, expect, it } from 'vitest';
import { LineBudget } from '../../src/log/line-budget.js';

describe('LineBudget', () => {
  it('ten in a row, then one a second; each source its own', () => {
    let now = 0;
    const budget = new LineBudget(10, 1, () => now);
    const taken = (source: string, times: number) => Array.from({ length: times }, () => budget.take(source)).filter(Boolean).length;
    expect(taken('bob', 1000)).toBe(10);
    expect(taken('alice', 3)).toBe(3);
    now = 1000;
    expect(taken('bob', 1000)).toBe(1);
    now = 3500;
    expect(taken('bob', 1000)).toBe(2);
    // Quiet for long enough: a burst again, never more than ten.
    now = 60_000;
    expect(taken('bob', 1000)).toBe(10);
  });
});
