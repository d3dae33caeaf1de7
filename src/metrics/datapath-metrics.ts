import { Gauge, type Registry } from 'prom-client';
import type { DatapathEngine } from '../datapath/engine.js';

/** The datapath's counters as Prometheus gauges, read when scraped. */
export function registerDatapathMetrics(registry: Registry, engine: DatapathEngine): void {
  const figures: Array<[string, string, () => number]> = [
    ['ntls_connections', 'Connections open now', () => engine.liveConnections().length],
    ['ntls_connections_total', 'Connections accepted since start', () => engine.statistics.connectionsTotal],
    ['ntls_connections_rejected_total', 'Connections refused by the admission limits', () => engine.statistics.connectionsRejected],
    ['ntls_handshakes_failed_total', 'TLS handshakes and identity exchanges that failed', () => engine.statistics.handshakesFailed],
    ['ntls_authentications_refused_total', 'Clients refused after the handshake', () => engine.statistics.authenticationsRefused],
    ['ntls_receive_timeouts_total', 'Connections ended by the receive timer', () => engine.statistics.receiveTimeouts],
    ['ntls_bytes_in_total', 'Bytes received from clients', () => engine.statistics.bytesIn],
    ['ntls_bytes_out_total', 'Bytes sent to clients', () => engine.statistics.bytesOut],
  ];
  for (const [name, help, read] of figures) {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  }
}
