// Which admin requests leave an audit record, and what of their arguments it keeps.
import type { Actor, AuditEvent, AuditLog } from './audit-log.js';
import type { AdminObserver } from '../admin/server.js';

/** Admin commands that change something, with the arguments worth keeping (never PINs or certificates). */
const AUDITED: Record<string, readonly string[]> = {
  'client.register': ['name', 'host', 'force'],
  'client.renew': ['name', 'force'],
  'client.delete': ['name'],
  'client.hostip': ['name', 'host'],
  'client.assign-partition': ['name', 'partition'],
  'client.revoke-partition': ['name', 'partition'],
  'partition.create': ['name', 'label'],
  'partition.delete': ['partition'],
  'partition.policy': ['partition', 'legacyRsa'],
  'cert.regen': ['keyType'],
  'service.restart': [],
  'home.backup': ['out'],
  'log.debug': ['enabled'],
  'token.deploy': ['token', 'partition'],
  'token.undeploy': ['token'],
  'token.backup': ['token', 'partition'],
  'token.restore': ['token', 'partition'],
};

function actorOf(who: unknown): Actor {
  const w = who as { uid?: unknown; user?: unknown } | undefined;
  return {
    kind: 'admin',
    uid: typeof w?.uid === 'number' ? w.uid : null,
    user: typeof w?.user === 'string' ? w.user.slice(0, 64) : 'unknown',
  };
}

/** The admin server's hook: one record per audited request, with its result. */
export function auditAdminRequest(log: AuditLog) {
  return (command: string, args: Record<string, unknown>, who: unknown, outcome: Parameters<AdminObserver>[3]): void => {
    const keep = AUDITED[command];
    if (!keep) return;
    // What the request resolved to (a partition's serial) beside the words the operator typed:
    // a name can be given again to another partition after a delete, a serial cannot.
    const target = { ...Object.fromEntries(keep.filter((k) => args[k] !== undefined).map((k) => [k, args[k]])), ...(outcome.ok ? outcome.resolved : {}) };
    const event: AuditEvent = { who: actorOf(who), action: command, target, result: outcome.ok ? 'ok' : 'refused', ...(outcome.ok ? {} : { code: outcome.code }) };
    log.record(event);
  };
}

/** `audit.record`: a record the CLI made while the daemon runs (config set), written by the daemon's one writer. */
export function auditHandlers(log: AuditLog): Map<string, (args: Record<string, unknown>, who?: unknown) => unknown> {
  return new Map([
    ['audit.record', (args: Record<string, unknown>, who?: unknown) => {
      const action = typeof args.action === 'string' && /^[a-z][a-z.-]{0,40}$/.test(args.action) ? args.action : 'unknown';
      const result = args.result === 'ok' || args.result === 'refused' || args.result === 'failed' ? args.result : 'failed';
      const target = typeof args.target === 'object' && args.target !== null ? args.target as Record<string, unknown> : undefined;
      const record = log.record({ who: actorOf(who), action, target, result, ...(typeof args.code === 'string' ? { code: args.code } : {}) });
      return { seq: record.seq };
    }],
  ]);
}
