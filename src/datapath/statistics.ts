/** The counters of the data path as data. */
export type DatapathCounters = { [K in keyof DatapathStatistics as DatapathStatistics[K] extends number ? K : never]: number };

/** Counters of the data path, read by `ntls info show`. */
export class DatapathStatistics {
  connectionsTotal = 0;
  connectionsRejected = 0;
  clientsConnected = 0;
  handshakesFailed = 0;
  authenticationsRefused = 0;
  malformedRequests = 0;
  receiveTimeouts = 0;
  /** Connections ended because a request did not arrive whole within datapath.frameTimeout. */
  frameTimeouts = 0;
  /** Connections still in their TLS handshake closed to make room for a newer one (pending limits). */
  pendingEvicted = 0;
  requests = 0;
  errors = 0;
  bytesIn = 0;
  bytesOut = 0;

  /** The counters as plain data (for info.show, and for summing the workers' reports). */
  snapshot(): DatapathCounters {
    return { ...this };
  }

  /** Adds another worker's counters to these. */
  add(other: DatapathCounters): void {
    for (const key of Object.keys(other) as (keyof DatapathCounters)[]) this[key] += other[key];
  }

  /** Zeroes the counters; connections now are not a counter and stay. */
  reset(): void {
    const connected = this.clientsConnected;
    Object.assign(this, new DatapathStatistics());
    this.clientsConnected = connected;
  }
}
