// A locked role refuses every C_Login, and a client can send them as fast as the link carries
// them: each one a synchronous record on the daemon's loop, and a log that grows without end (the
// attacker's probe wrote 2,390 a second, 67 GB a day). The first refusal of a client, partition
// and role is recorded; the ones after it within the minute are counted, and written as one
// record (its target's `leftOut`) when the minute ends.
import type { AuditEvent } from './audit-log.js';

export const REFUSAL_WINDOW_MS = 60_000;

interface Seen {
  at: number;
  leftOut: number;
  last: AuditEvent;
  flushing: boolean;
}

export type Schedule = (run: () => void, ms: number) => void;

const unrefTimer: Schedule = (run, ms) => { setTimeout(run, ms).unref(); };

export class RepeatedRefusals {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly write: (event: AuditEvent) => void,
    private readonly windowMs = REFUSAL_WINDOW_MS,
    private readonly now: () => number = Date.now,
    private readonly schedule: Schedule = unrefTimer,
  ) {}

  record(event: AuditEvent): void {
    if (event.action !== 'login.locked') return this.write(event);
    const who = event.who.kind === 'client' ? event.who.name : event.who.user;
    const key = JSON.stringify([who, event.target?.serial, event.target?.role]);
    const at = this.now();
    const seen = this.seen.get(key);
    if (seen && at - seen.at < this.windowMs) {
      seen.leftOut++;
      seen.last = event;
      if (!seen.flushing) {
        seen.flushing = true;
        this.schedule(() => this.flush(key), seen.at + this.windowMs - at);
      }
      return;
    }
    this.seen.set(key, { at, leftOut: 0, last: event, flushing: false });
    this.write(event);
  }

  /** Writes every count still waiting for its minute to end (the daemon is stopping). */
  flushAll(): void {
    for (const key of [...this.seen.keys()]) this.flush(key);
  }

  /** The refusals counted since the last record, as one record; the next minute starts now. */
  private flush(key: string): void {
    const seen = this.seen.get(key);
    if (!seen) return;
    seen.flushing = false;
    if (seen.leftOut === 0) {
      this.seen.delete(key);
      return;
    }
    this.write({ ...seen.last, target: { ...seen.last.target, leftOut: seen.leftOut } });
    seen.at = this.now();
    seen.leftOut = 0;
  }
}
