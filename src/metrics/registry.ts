// The daemon's one Prometheus registry, for the life of the process: `ntls service restart`
// (a stop and a start in the same process) keeps it, so counters go on from where they were.
import { Gauge, Registry } from 'prom-client';

let registry: Registry | null = null;

/** The registry of this process, made (with ntls_build_info) on first use. */
export function daemonRegistry(version: string): Registry {
  if (registry) return registry;
  registry = new Registry();
  const info = new Gauge({ name: 'ntls_build_info', help: 'Always 1; the labels say which ntls and node run', labelNames: ['version', 'node'], registers: [registry] });
  info.set({ version, node: process.versions.node }, 1);
  return registry;
}
