import { join } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

// Two speeds. Unit: in memory — no daemon, no CLI, no system tool, nothing spawned, no build
// (dist/) needed; `npm run test:unit`, under a minute. Integration: the rest — the real daemon,
// the CLIs from dist/, the stock PKCS#11 tools, SoftHSM2; `npm run test:integration`. A file
// not listed here is integration. test/support/unit-guard.ts fails a unit test that spawns.
const UNIT = [
  'test/admin/logs/explanations.test.ts',
  'test/admin/logs/guide-lines.test.ts',
  'test/admin/logs/parse-and-match.test.ts',
  'test/client/timeout.test.ts',
  'test/client/units.test.ts',
  'test/client/ha-units.test.ts',
  'test/config/config.test.ts',
  'test/daemon/placement.test.ts',
  'test/datapath/pending-pool.test.ts',
  'test/datapath/tcp-keepalive.test.ts',
  'test/errors/error-base.test.ts',
  'test/hsm/attributes.test.ts',
  'test/hsm/info.test.ts',
  'test/hsm/key-attributes.test.ts',
  'test/hsm/legacy.test.ts',
  'test/home/archive.test.ts',
  'test/token/object-handles.test.ts',
  'test/hsm/bulk-fairness.test.ts',
  'test/hsm/mechanisms/cmac.test.ts',
  'test/hsm/mechanisms/hmac.test.ts',
  'test/hsm/mechanisms/ecdsa-prehash.test.ts',
  'test/hsm/mechanisms/errors.test.ts',
  'test/hsm/mechanisms/operations.test.ts',
  'test/hsm/mechanisms/vectors.test.ts',
  'test/hsm/public-session.test.ts',
  'test/hsm/sessions.test.ts',
  'test/log/catalogue.test.ts',
  'test/log/format.test.ts',
  'test/log/logger.test.ts',
  // The processor through the in-process harness (test/support/processor-harness.ts), on the
  // software HSM; their SoftHSM2 twins (*.pkcs11.test.ts) need softhsm2 and are integration.
  'test/processor/application-ids.test.ts',
  'test/processor/isolation.test.ts',
  'test/processor/protocol-v2.test.ts',
  'test/protocol/frame-admission.test.ts',
  'test/protocol/frame.test.ts',
  'test/protocol/identity.test.ts',
  'test/protocol/p11kit/captured.test.ts',
  'test/protocol/p11kit/client-codec.test.ts',
  'test/protocol/p11kit/frame.test.ts',
  'test/protocol/p11kit/fuzz.test.ts',
  'test/protocol/p11kit/messages.test.ts',
  'test/registry/client-registry.test.ts',
  'test/store/at-rest.test.ts',
  'test/store/integrity.test.ts',
  'test/store/open-failure.test.ts',
  'test/tokens/image.test.ts',
  'test/tokens/virtual-tokens.test.ts',
  'test/tokens/watcher.test.ts',
];

// .ci/run sets NTLS_TEST_REPORT_DIR: each run then also writes a JSON report there, and
// scripts/ci-summary.mjs prints the failures last, where the tail of CI's output shows them.
const reportDir = process.env.NTLS_TEST_REPORT_DIR;

export default defineConfig({
  test: {
    reporters: reportDir ? ['default', 'json'] : ['default'],
    ...(reportDir ? { outputFile: { json: join(reportDir, `vitest-${Date.now()}-${process.pid}.json`) } } : {}),
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real daemons; two cores do not gain from more parallel files.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: UNIT, setupFiles: ['test/support/unit-guard.ts'] },
      },
      {
        extends: true,
        test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...UNIT] },
      },
    ],
  },
});
