// What the start message says after "online on ...": what to do next.
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface NextStepFacts {
  root: string;
  certificateFile: string;
  certificate: X509Certificate;
  metrics: AddressInfo | string | null;
}

export function nextSteps(facts: NextStepFacts): string {
  const home = `--home ${facts.root}`;
  const metrics = facts.metrics === null
    ? `off (turn on: ntls config set metrics.enabled true ${home}, then restart)`
    : typeof facts.metrics === 'string' ? facts.metrics
      : `http://${facts.metrics.family === 'IPv6' ? `[${facts.metrics.address}]` : facts.metrics.address}:${facts.metrics.port}/metrics (and /healthz, /readyz)`;
  return [
    `  server certificate  ${facts.certificateFile}`,
    `  fingerprint         SHA-256 ${facts.certificate.fingerprint256}`,
    `  for clients         ntls cert show --pem ${home} > server.pem`,
    `  register a client   ntls client register --client NAME --cert NAME.pem --hostname CLIENT-HOST ${home}`,
    `  give it a partition ntls client assign-partition --client NAME --partition default ${home}`,
    `  metrics             ${metrics}`,
    '',
  ].join('\n');
}
