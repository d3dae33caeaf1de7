import { Counter, Gauge, type Registry } from 'prom-client';
import type { DatapathView } from '../datapath/datapath-view.js';
import type { DatapathCounters } from '../datapath/statistics.js';

const COUNTERS: Array<[string, string, keyof DatapathCounters]> = [
  ['ntls_connections_total', 'Connections accepted', 'connectionsTotal'],
  ['ntls_connections_rejected_total', 'Connections refused by the admission limits', 'connectionsRejected'],
  ['ntls_handshakes_failed_total', 'TLS handshakes and identity exchanges that failed', 'handshakesFailed'],
  ['ntls_authentications_refused_total', 'Clients refused after the handshake', 'authenticationsRefused'],
  ['ntls_receive_timeouts_total', 'Connections ended by the receive timer', 'receiveTimeouts'],
  ['ntls_bytes_in_total', 'Bytes received from clients', 'bytesIn'],
  ['ntls_bytes_out_total', 'Bytes sent to clients', 'bytesOut'],
];

/** What the registry's datapath counters follow: the data path of the current start, and what of it they hold. */
interface Followed {
  datapath: DatapathView;
  seen: Map<string, number>;
  sampling: Promise<void> | null;
}

const followed = new WeakMap<Registry, Followed>();

/**
 * Adds what the data path (every worker, summed) counted since the last look — all it counted,
 * when its figures went down (`ntls info reset`). Scrapes at the same moment share one look.
 */
function sample(registry: Registry, state: Followed): Promise<void> {
  state.sampling ??= (async () => {
    const statistics = await state.datapath.statistics();
    for (const [name, , key] of COUNTERS) {
      const now = statistics[key];
      const before = state.seen.get(name) ?? 0;
      const delta = now >= before ? now - before : now;
      if (delta > 0) (registry.getSingleMetric(name) as Counter).inc(delta);
      state.seen.set(name, now);
    }
  })().finally(() => { state.sampling = null; });
  return state.sampling;
}

/**
 * The datapath's counters as Prometheus counters, brought up to date when scraped and carried
 * over a restart in the same process (the registry outlives the data path: the new one's figures
 * add to them); ntls_connections and ntls_datapath_workers are gauges.
 */
export function registerDatapathMetrics(registry: Registry, datapath: DatapathView): void {
  const previous = followed.get(registry);
  followed.set(registry, { datapath, seen: new Map(), sampling: null });
  // The previous start's data path (stopped, its figures final) is counted in before it is left.
  if (previous) void sample(registry, previous);
  if (registry.getSingleMetric('ntls_connections_total')) return;
  const current = () => followed.get(registry)!;
  for (const [name, help] of COUNTERS) {
    new Counter({ name, help, registers: [registry], async collect() { await sample(registry, current()); } });
  }
  new Gauge({
    name: 'ntls_connections', help: 'Connections open now', registers: [registry],
    async collect() { this.set((await current().datapath.connections()).total); },
  });
  new Gauge({
    name: 'ntls_datapath_workers', help: 'Processes serving the TLS port', registers: [registry],
    collect() { this.set(current().datapath.workers); },
  });
}
