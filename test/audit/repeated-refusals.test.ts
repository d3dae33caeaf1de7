// login.locked records: the first of a client, partition and role, then at most one a minute with
// how many were left out before it. Other records all go through.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-log.js';
import { RepeatedRefusals } from '../../src/audit/repeated-refusals.js';

const locked = (name: string, serial: string, role = 'co'): AuditEvent => ({
  who: { kind: 'client', name, peer: '127.0.0.1/40000' }, action: 'login.locked', target: { partition: 'p', serial, role }, result: 'refused', code: 'CKR_PIN_LOCKED',
});

describe('RepeatedRefusals', () => {
  it('writes the first refusal, leaves the rest of the minute out, then writes one saying how many', () => {
    const written: AuditEvent[] = [];
    let now = 0;
    const refusals = new RepeatedRefusals((e) => written.push(e), 60_000, () => now);
    for (let i = 0; i < 1000; i++) refusals.record(locked('bob', '1'));
    expect(written).toHaveLength(1);
    expect(written[0]!.target).toEqual({ partition: 'p', serial: '1', role: 'co' });
    // Another role, partition or client is its own.
    refusals.record(locked('bob', '1', 'so'));
    refusals.record(locked('bob', '2'));
    refusals.record(locked('alice', '1'));
    expect(written).toHaveLength(4);
    now = 60_000;
    refusals.record(locked('bob', '1'));
    expect(written).toHaveLength(5);
    expect(written[4]!.target).toEqual({ partition: 'p', serial: '1', role: 'co', leftOut: 999 });
    // Failed logins (bounded by the lock) and everything else are all written.
    const failed = { ...locked('bob', '1'), action: 'login.failed', code: 'CKR_PIN_INCORRECT' };
    refusals.record(failed);
    refusals.record(failed);
    expect(written).toHaveLength(7);
  });
});
