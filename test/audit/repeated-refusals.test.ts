// login.locked records: the first of a client, partition and role, then the refusals of the
// minute counted and written as one record when it ends. Other records all go through.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-log.js';
import { RepeatedRefusals } from '../../src/audit/repeated-refusals.js';

const locked = (name: string, serial: string, role = 'co'): AuditEvent => ({
  who: { kind: 'client', name, peer: '127.0.0.1/40000' }, action: 'login.locked', target: { partition: 'p', serial, role }, result: 'refused', code: 'CKR_PIN_LOCKED',
});

describe('RepeatedRefusals', () => {
  it('writes the first refusal, counts the rest of the minute, and writes that count when the minute ends', () => {
    const written: AuditEvent[] = [];
    let now = 0;
    const timers: Array<{ at: number; run: () => void }> = [];
    const refusals = new RepeatedRefusals((e) => written.push(e), 60_000, () => now, (run, ms) => timers.push({ at: now + ms, run }));
    const advance = (to: number) => {
      now = to;
      for (const t of timers.splice(0).filter((x) => x.at <= to)) t.run();
    };
    for (let i = 0; i < 1000; i++) refusals.record(locked('bob', '1'));
    expect(written).toHaveLength(1);
    expect(written[0]!.target).toEqual({ partition: 'p', serial: '1', role: 'co' });
    // Another role, partition or client is its own.
    refusals.record(locked('bob', '1', 'so'));
    refusals.record(locked('bob', '2'));
    refusals.record(locked('alice', '1'));
    expect(written).toHaveLength(4);
    // The minute ends: the 999 left out are one record, written even if no refusal follows.
    advance(60_000);
    expect(written).toHaveLength(5);
    expect(written[4]!.target).toEqual({ partition: 'p', serial: '1', role: 'co', leftOut: 999 });
    // A refusal in the next minute is counted again, then written at its end.
    advance(70_000);
    refusals.record(locked('bob', '1'));
    expect(written).toHaveLength(5);
    advance(120_000);
    expect(written[5]!.target).toMatchObject({ leftOut: 1 });
    // A quiet minute: the next refusal is written at once.
    advance(200_000);
    refusals.record(locked('bob', '1'));
    expect(written).toHaveLength(7);
    expect(written[6]!.target).toEqual({ partition: 'p', serial: '1', role: 'co' });
    // Failed logins (bounded by the lock) and everything else are all written.
    const failed = { ...locked('bob', '1'), action: 'login.failed', code: 'CKR_PIN_INCORRECT' };
    refusals.record(failed);
    refusals.record(failed);
    expect(written).toHaveLength(9);
  });

  it('writes the counts still waiting when the daemon stops, and nothing for a role with none', () => {
    const written: AuditEvent[] = [];
    const refusals = new RepeatedRefusals((e) => written.push(e), 60_000, () => 0, () => {});
    for (let i = 0; i < 5; i++) refusals.record(locked('bob', '1'));
    refusals.record(locked('alice', '1'));
    expect(written).toHaveLength(2);
    refusals.flushAll();
    expect(written).toHaveLength(3);
    expect(written[2]!.who).toMatchObject({ name: 'bob' });
    expect(written[2]!.target).toEqual({ partition: 'p', serial: '1', role: 'co', leftOut: 4 });
    refusals.flushAll();
    expect(written).toHaveLength(3);
  });
});
