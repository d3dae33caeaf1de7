// Liveness and readiness of the daemon: GET /healthz (the process answers) and GET /readyz (it
// serves: store open, data path listening, processor loaded; 503 otherwise) on the metrics
// port, and `ntls status --json` with the same facts.

export interface ReadinessChecks {
  /** The HSM store answers (the built-in processor's partitions can be listed). */
  storeOpen: boolean;
  /** The data path listens. */
  listening: boolean;
  /** The command processor is loaded and not shut down. */
  processorLoaded: boolean;
}

export interface Health {
  live: true;
  ready: boolean;
  checks: ReadinessChecks;
}

export type HealthProbe = () => Promise<Health>;

export function health(checks: ReadinessChecks): Health {
  return { live: true, ready: checks.storeOpen && checks.listening && checks.processorLoaded, checks };
}
