import { Counter, Gauge, type Registry } from 'prom-client';
import type { DatapathEngine } from '../datapath/engine.js';
import type { DatapathStatistics } from '../datapath/statistics.js';

type Read = (statistics: DatapathStatistics) => number;

const COUNTERS: Array<[string, string, Read]> = [
  ['ntls_connections_total', 'Connections accepted', (s) => s.connectionsTotal],
  ['ntls_connections_rejected_total', 'Connections refused by the admission limits', (s) => s.connectionsRejected],
  ['ntls_handshakes_failed_total', 'TLS handshakes and identity exchanges that failed', (s) => s.handshakesFailed],
  ['ntls_authentications_refused_total', 'Clients refused after the handshake', (s) => s.authenticationsRefused],
  ['ntls_receive_timeouts_total', 'Connections ended by the receive timer', (s) => s.receiveTimeouts],
  ['ntls_bytes_in_total', 'Bytes received from clients', (s) => s.bytesIn],
  ['ntls_bytes_out_total', 'Bytes sent to clients', (s) => s.bytesOut],
];

/** What the registry's datapath counters follow: the engine of the current start, and what of it they hold. */
interface Followed {
  engine: DatapathEngine;
  seen: Map<string, number>;
}

const followed = new WeakMap<Registry, Followed>();

/** Adds what the engine counted since the last look (all it counted, when its figures went down: `ntls info reset`). */
function sample(registry: Registry): void {
  const state = followed.get(registry);
  if (!state) return;
  for (const [name, , read] of COUNTERS) {
    const now = read(state.engine.statistics);
    const before = state.seen.get(name) ?? 0;
    const delta = now >= before ? now - before : now;
    if (delta > 0) (registry.getSingleMetric(name) as Counter).inc(delta);
    state.seen.set(name, now);
  }
}

/**
 * The datapath's figures for Prometheus: `*_total` are counters, read from the engine when
 * scraped and carried over a restart in the same process (the registry outlives the engine: the
 * new engine's figures add to them); ntls_connections is a gauge.
 */
export function registerDatapathMetrics(registry: Registry, engine: DatapathEngine): void {
  // The previous start's engine (stopped, its figures final) is counted in before it is left.
  sample(registry);
  followed.set(registry, { engine, seen: new Map() });
  if (registry.getSingleMetric('ntls_connections_total')) return;
  for (const [name, help] of COUNTERS) {
    new Counter({ name, help, registers: [registry], collect() { sample(registry); } });
  }
  new Gauge({
    name: 'ntls_connections', help: 'Connections open now', registers: [registry],
    collect() { this.set(followed.get(registry)?.engine.liveConnections().length ?? 0); },
  });
}
