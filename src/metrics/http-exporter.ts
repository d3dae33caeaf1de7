// Serves the Prometheus metrics (prom-client) on a local HTTP port, when configured, with
// /healthz and /readyz (src/metrics/health.ts).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { HealthProbe } from './health.js';

export const METRICS_MAX_CONNECTIONS = 64;
export const METRICS_IDLE_MS = 10_000;

export async function serveMetrics(registry: Registry, bind: string, port: number, probe?: HealthProbe): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.method === 'GET' && (request.url === '/healthz' || request.url === '/readyz') && probe) {
      const live = request.url === '/healthz';
      probe().then((h) => {
        const ok = live || h.ready;
        response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(live ? { live: true } : h) + '\n');
      }, () => response.writeHead(live ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ live: true, ready: false }) + '\n'));
      return;
    }
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    registry.metrics().then((text) => {
      response.writeHead(200, { 'content-type': registry.contentType }).end(text);
    }, () => response.writeHead(500).end());
  });
  // A scraper makes one request at a time: the port is not a way to hold the daemon's file
  // descriptors. Connections beyond these are closed at once, and a silent one after 10 s.
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.setTimeout(METRICS_IDLE_MS);
  server.headersTimeout = METRICS_IDLE_MS;
  server.requestTimeout = METRICS_IDLE_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bind, () => {
      server.off('error', reject);
      // An accept that failed (EMFILE) loses that connection only.
      server.on('error', () => undefined);
      resolve();
    });
  });
  return server;
}
