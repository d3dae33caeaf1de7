// Per-call statistics of the command processor: counts, failures and latency, kept as
// Prometheus metrics (served by src/metrics when enabled) and read by `ntls info show`.
import { Counter, Registry, Summary } from 'prom-client';
import { ckrName } from '../../pkcs11/constants.js';

export interface CallFigures {
  call: string;
  count: number;
  errors: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
}

export class CallStatistics {
  private readonly requests: Counter<'call'>;
  private readonly failures: Counter<'call' | 'rv'>;
  private readonly latency: Summary<'call'>;
  private readonly byCall = new Map<string, { count: number; errors: number }>();

  constructor(readonly registry: Registry) {
    this.requests = new Counter({ name: 'ntls_requests_total', help: 'PKCS#11 requests served, by call', labelNames: ['call'], registers: [registry] });
    this.failures = new Counter({ name: 'ntls_request_errors_total', help: 'Requests answered with a CKR_ other than CKR_OK', labelNames: ['call', 'rv'], registers: [registry] });
    this.latency = new Summary({
      name: 'ntls_request_duration_seconds', help: 'Time to serve a request, by call', labelNames: ['call'],
      percentiles: [0.5, 0.9, 0.99], maxAgeSeconds: 600, ageBuckets: 5, registers: [registry],
    });
  }

  record(call: string, rv: number, seconds: number): void {
    let figures = this.byCall.get(call);
    if (!figures) {
      figures = { count: 0, errors: 0 };
      this.byCall.set(call, figures);
    }
    figures.count++;
    this.requests.inc({ call });
    this.latency.observe({ call }, seconds);
    if (rv !== 0) {
      figures.errors++;
      this.failures.inc({ call, rv: ckrName(rv) });
    }
  }

  async snapshot(): Promise<CallFigures[]> {
    const summary = await this.latency.get();
    const quantile = (call: string, q: number) => {
      const value = summary.values.find((v) => (v.labels as Record<string, unknown>).call === call && (v.labels as Record<string, unknown>).quantile === q)?.value ?? 0;
      return Number.isFinite(value) ? Math.round(value * 1e6) / 1e3 : 0;
    };
    return [...this.byCall.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([call, f]) => ({
      call, count: f.count, errors: f.errors, p50ms: quantile(call, 0.5), p90ms: quantile(call, 0.9), p99ms: quantile(call, 0.99),
    }));
  }

  reset(): void {
    this.byCall.clear();
    this.requests.reset();
    this.failures.reset();
    this.latency.reset();
  }
}
