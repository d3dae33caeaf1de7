import { Gauge, type Registry } from 'prom-client';
import type { DatapathView } from '../datapath/datapath-view.js';
import type { DatapathCounters } from '../datapath/statistics.js';

/** The datapath's counters, summed over its worker processes, read when scraped. */
export function registerDatapathMetrics(registry: Registry, datapath: DatapathView): void {
  const counters: Array<[string, string, keyof DatapathCounters]> = [
    ['ntls_connections_total', 'Connections accepted since start', 'connectionsTotal'],
    ['ntls_connections_rejected_total', 'Connections refused by the admission limits', 'connectionsRejected'],
    ['ntls_handshakes_failed_total', 'TLS handshakes and identity exchanges that failed', 'handshakesFailed'],
    ['ntls_authentications_refused_total', 'Clients refused after the handshake', 'authenticationsRefused'],
    ['ntls_receive_timeouts_total', 'Connections ended by the receive timer', 'receiveTimeouts'],
    ['ntls_bytes_in_total', 'Bytes received from clients', 'bytesIn'],
    ['ntls_bytes_out_total', 'Bytes sent to clients', 'bytesOut'],
  ];
  new Gauge({ name: 'ntls_connections', help: 'Connections open now', registers: [registry],
    async collect() { this.set((await datapath.connections()).total); } });
  for (const [name, help, key] of counters) {
    new Gauge({ name, help, registers: [registry], async collect() { this.set((await datapath.statistics())[key]); } });
  }
  new Gauge({ name: 'ntls_datapath_workers', help: 'Processes serving the TLS port', registers: [registry],
    collect() { this.set(datapath.workers); } });
}
