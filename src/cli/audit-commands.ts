// `ntls logs audit [--verify] [--json]`: the audit trail of a home (src/audit), read from its file,
// so it works with or without a daemon.
import type { Command } from 'commander';
import { readAudit, verifyAudit, type AuditRecord } from '../audit/audit-log.js';
import { resolveHome } from '../home/layout.js';
import { Exit, fail } from './failure.js';
import { table } from './output.js';

function whoText(record: AuditRecord): string {
  const w = record.who;
  return w.kind === 'client' ? `client ${w.name}` : `${w.user}${w.uid === null ? '' : ` (uid ${w.uid})`}`;
}

function targetText(record: AuditRecord): string {
  return Object.entries(record.target ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

export function registerAuditCommands(program: Command): void {
  const logs = program.commands.find((c) => c.name() === 'logs');
  if (!logs) throw new Error('the logs command is registered first');
  logs.command('audit')
    .description('the audit trail: who changed what, when, with what result; --verify checks its MAC chain')
    .option('--home <dir>', 'service home (default: $NTLS_HOME or ./ntls-home)')
    .option('--verify', 'check that no record was edited, removed, inserted or moved; names the first bad line')
    .option('--json', 'output for scripts')
    .action((o: { home?: string; verify?: boolean; json?: boolean }) => {
      const home = resolveHome(o.home);
      if (o.verify) {
        const result = verifyAudit(home);
        if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
        if (!result.ok) {
          const { line, problem } = result.firstBad!;
          fail('NTLS_ERR_AUDIT_TAMPERED', `the audit log does not check at line ${line}: ${problem}`, 'keep this copy for investigation; restore the audit folder from a backup', Exit.Failed);
        }
        if (!o.json) process.stdout.write(`audit log intact: ${result.records} record(s)\n`);
        return;
      }
      const records = readAudit(home);
      if (o.json) {
        process.stdout.write(JSON.stringify(records, null, 2) + '\n');
        return;
      }
      process.stdout.write(table(records.map((r) => ({
        seq: r.seq, time: r.time, who: whoText(r), action: r.action, target: targetText(r), result: r.code ? `${r.result} ${r.code}` : r.result,
      })), ['seq', 'time', 'who', 'action', 'target', 'result']));
    });
}
