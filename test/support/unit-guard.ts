// Set-up of the unit project (vitest.config.ts): a unit test runs in memory, so starting any
// process — the daemon, a CLI, a system tool — fails it at once with this message. Such a test
// belongs to the integration project.
import { vi } from 'vitest';

vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  const forbidden = (name: string) => () => {
    throw new Error(`unit tests start no process (child_process.${name}): move this test file to the integration list in vitest.config.ts`);
  };
  const names = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;
  return { ...real, ...Object.fromEntries(names.map((name) => [name, forbidden(name)])) };
});
