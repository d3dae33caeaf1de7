// Audit records of changes `ntls` makes itself (config set, token init): written by the running
// daemon, the one writer of the chain, or here when none runs (its home lock is free, so nothing
// else writes it).
import { callAdmin } from '../admin/client.js';
import { AdminError } from '../admin/protocol.js';
import { AuditLog, currentOperator } from '../audit/audit-log.js';

export async function recordChange(home: string, action: string, target: Record<string, unknown>): Promise<void> {
  const event = { action, target, result: 'ok' as const };
  try {
    await callAdmin(home, 'audit.record', event);
  } catch (error) {
    if (!(error instanceof AdminError) || error.code !== 'NTLS_ERR_NO_DAEMON') throw error;
    new AuditLog(home).record({ ...event, who: currentOperator() });
  }
}
