// A locked role refuses every C_Login, and a client can send them as fast as the link carries
// them: each one a synchronous record on the daemon's loop, and a log that grows without end (the
// attacker's probe wrote 2,390 a second, 67 GB a day). The first refusal of a client, partition
// and role is recorded; then at most one a minute, saying how many were left out before it.
import type { AuditEvent } from './audit-log.js';

export const REFUSAL_WINDOW_MS = 60_000;

export class RepeatedRefusals {
  private readonly last = new Map<string, { at: number; leftOut: number }>();

  constructor(
    private readonly write: (event: AuditEvent) => void,
    private readonly windowMs = REFUSAL_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  record(event: AuditEvent): void {
    if (event.action !== 'login.locked') return this.write(event);
    const who = event.who.kind === 'client' ? event.who.name : event.who.user;
    const key = JSON.stringify([who, event.target?.serial, event.target?.role]);
    const seen = this.last.get(key);
    const at = this.now();
    if (seen && at - seen.at < this.windowMs) {
      seen.leftOut++;
      return;
    }
    this.forgetOld(at);
    this.last.set(key, { at, leftOut: 0 });
    this.write(seen && seen.leftOut > 0 ? { ...event, target: { ...event.target, leftOut: seen.leftOut } } : event);
  }

  /** Entries whose window has passed say nothing more: kept only until the next one after it. */
  private forgetOld(at: number): void {
    if (this.last.size < 1024) return;
    for (const [key, seen] of this.last) if (at - seen.at >= this.windowMs && seen.leftOut === 0) this.last.delete(key);
  }
}
