// Per-call statistics of the command processor: counts, failures and latency, kept as
// Prometheus metrics (served by src/metrics when enabled) and read by `ntls info show`.
// On the request path: a few increments and one histogram observation, on metric children
// looked up once per call name; percentiles are computed only when asked for.
import { Counter, Histogram, Registry } from 'prom-client';
import { ckrName } from '../../pkcs11/constants.js';

export interface CallFigures {
  call: string;
  count: number;
  errors: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
}

/** The latest RESERVOIR latencies of one call, for percentiles. */
const RESERVOIR = 1024;

interface PerCall {
  count: number;
  errors: number;
  latencies: Float64Array;
  requests: { inc(): void };
  duration: { observe(value: number): void };
}

export class CallStatistics {
  private readonly requests: Counter<'call'>;
  private readonly failures: Counter<'call' | 'rv'>;
  private readonly duration: Histogram<'call'>;
  private readonly byCall = new Map<string, PerCall>();

  constructor(readonly registry: Registry) {
    // The daemon's registry outlives a restart in the same process (`ntls service restart`): the
    // metrics made by the previous start go on counting.
    this.requests = registry.getSingleMetric('ntls_requests_total') as Counter<'call'> | undefined
      ?? new Counter({ name: 'ntls_requests_total', help: 'PKCS#11 requests served, by call', labelNames: ['call'], registers: [registry] });
    this.failures = registry.getSingleMetric('ntls_request_errors_total') as Counter<'call' | 'rv'> | undefined
      ?? new Counter({ name: 'ntls_request_errors_total', help: 'Requests answered with a CKR_ other than CKR_OK', labelNames: ['call', 'rv'], registers: [registry] });
    this.duration = registry.getSingleMetric('ntls_request_duration_seconds') as Histogram<'call'> | undefined ?? new Histogram({
      name: 'ntls_request_duration_seconds', help: 'Time to serve a request, by call', labelNames: ['call'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  }

  record(call: string, rv: number, seconds: number): void {
    let figures = this.byCall.get(call);
    if (!figures) {
      figures = {
        count: 0, errors: 0, latencies: new Float64Array(RESERVOIR),
        requests: this.requests.labels(call), duration: this.duration.labels(call),
      };
      this.byCall.set(call, figures);
    }
    figures.latencies[figures.count % RESERVOIR] = seconds;
    figures.count++;
    figures.requests.inc();
    figures.duration.observe(seconds);
    if (rv !== 0) {
      figures.errors++;
      this.failures.inc({ call, rv: ckrName(rv) });
    }
  }

  async snapshot(): Promise<CallFigures[]> {
    return [...this.byCall.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([call, f]) => {
      const sorted = f.latencies.slice(0, Math.min(f.count, RESERVOIR)).sort();
      const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 1e6) / 1e3;
      return { call, count: f.count, errors: f.errors, p50ms: at(0.5), p90ms: at(0.9), p99ms: at(0.99) };
    });
  }

  /** `ntls info reset`: the figures of `ntls info show` start again; Prometheus counters never go down. */
  reset(): void {
    this.byCall.clear();
  }
}
