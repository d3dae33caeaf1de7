// What the start message says after "online on ...": what to do next.
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface NextStepFacts {
  root: string;
  certificateFile: string;
  certificate: X509Certificate;
  metrics: AddressInfo | string | null;
  /** The partitions clients can be given, by name. */
  partitions: readonly string[];
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
    facts.partitions.length > 0
      ? `  give it a partition ntls client assign-partition --client NAME --partition ${facts.partitions.includes('default') ? 'default' : facts.partitions[0]} ${home}`
      : `  give it a partition ntls partition create --name NAME ${home}, then ntls client assign-partition`,
    `  metrics             ${metrics}`,
    '',
  ].join('\n');
}
