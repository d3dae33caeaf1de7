// The data path as one: the main process's engine (the local socket, and the TLS connections it
// keeps) and the datapath workers' reports, summed.
import type { DatapathConnections, DatapathView, DatapathWorker } from '../datapath/datapath-view.js';
import type { DatapathEngine } from '../datapath/engine.js';
import { DatapathStatistics, type DatapathCounters } from '../datapath/statistics.js';
import type { WorkerPool } from './worker-pool.js';

export function combinedDatapath(engine: DatapathEngine, pool: WorkerPool | null): DatapathView {
  return {
    workers: (pool?.size ?? 0) + 1,
    async statistics(): Promise<DatapathCounters> {
      const sum = new DatapathStatistics();
      sum.add(engine.statistics.snapshot());
      if (pool) sum.add(pool.retired.snapshot());
      for (const report of pool ? await pool.refresh() : []) sum.add(report.statistics);
      return sum.snapshot();
    },
    async resetStatistics(): Promise<void> {
      engine.statistics.reset();
      await pool?.resetStatistics();
    },
    async connections(): Promise<DatapathConnections> {
      const here = engine.connectionCounts();
      const byClient: Record<string, number> = { ...here.byClient };
      let total = here.total;
      for (const report of pool ? await pool.refresh() : []) {
        total += report.connections;
        for (const [client, n] of Object.entries(report.clients)) byClient[client] = (byClient[client] ?? 0) + n;
      }
      return { total, byClient };
    },
    async processes(): Promise<DatapathWorker[]> {
      const main: DatapathWorker = { index: 0, role: 'main', pid: process.pid, connections: engine.connectionCounts().total, connectionsTotal: engine.statistics.connectionsTotal };
      const workers = pool ? await pool.refresh() : [];
      return [main, ...workers.map((r): DatapathWorker => ({ index: r.index, role: 'worker', pid: r.pid, connections: r.connections, connectionsTotal: r.statistics.connectionsTotal }))];
    },
    async terminateClient(client: string): Promise<number> {
      return engine.terminateClient(client) + (pool ? await pool.terminateClient(client) : 0);
    },
  };
}
