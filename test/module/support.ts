// What the tests of ntls's own PKCS#11 module share: a real daemon with one partition for one
// registered client whose ntls-client config folder (client.json, certificate, key, the server's
// certificate) is made by the real `ntls-client`; the module's path from `ntls-client
// module-path`; the module-check C program (fixtures/module-check.c) built with cc; and the
// environment that points the module at that folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { Daemon, removeHome } from '../support/daemon.js';
import {
  admin, createPartition, explain, mustSucceed, ntlsClientBin, P11KIT_CLIENT, removeDir, run, startE2eDaemon, tempDir,
  type RunOptions, type ToolResult,
} from '../support/e2e.js';

export const SO_PIN = '87654321';
export const PIN = '1234';

export const here = dirname(new URL(import.meta.url).pathname);
const moduleHeaders = join(here, '..', '..', 'native', 'pkcs11-module');

export interface ModuleWorld {
  daemon: Daemon;
  work: string;
  /** The client's ntls-client config folder. */
  folder: string;
  client: string;
  /** libntls-pkcs11.so, as `ntls-client module-path` prints it. */
  module: string;
  /** The environment of an application using the module: NTLS_CLIENT_HOME = folder. */
  env: NodeJS.ProcessEnv;
  serial: string;
  close(): Promise<void>;
}

export function ntlsClient(args: string[], options: RunOptions = {}): Promise<ToolResult> {
  return run(process.execPath, [ntlsClientBin, ...args], options);
}

/**
 * The daemon, a partition assigned to `client`, and the client's config folder made the way a
 * user makes it (create-cert, register, add-server). With `initialize`, the token is initialised
 * through the module itself (pkcs11-tool --init-token / --init-pin).
 */
export async function moduleWorld(client: string, options: { initialize?: boolean; daemon?: Record<string, unknown> } = {}): Promise<ModuleWorld> {
  const work = tempDir(`ntls-module-${client}-`);
  const folder = join(work, 'client-config');
  const daemon = await startE2eDaemon(options.daemon ?? {});
  try {
    const partition = await createPartition(daemon, `${client}-part`);
    mustSucceed(await ntlsClient(['create-cert', '--cn', client, '--config-dir', folder]));
    await admin(daemon, 'client', 'register', '-c', client, '--cert', join(folder, `${client}.pem`), '--hostname', '127.0.0.1');
    await admin(daemon, 'client', 'assign-partition', '-c', client, '-p', partition.label);
    mustSucceed(await ntlsClient(['add-server', '--config-dir', folder, '--host', '127.0.0.1', '--port', String(daemon.port),
      '--cert', join(daemon.home, 'server', 'server.pem'), '--name', 'hsm1']));
    const module = mustSucceed(await ntlsClient(['module-path'])).stdout.trim();
    const env = { NTLS_CLIENT_HOME: folder };
    const world: ModuleWorld = {
      daemon, work, folder, client, module, env, serial: partition.serial,
      async close() {
        await daemon.stop();
        removeHome(daemon.home);
        removeDir(work);
      },
    };
    if (options.initialize) {
      mustSucceed(await moduleTool(world, ['--init-token', '--slot', '0', '--label', `${client}-token`, '--so-pin', SO_PIN]));
      mustSucceed(await moduleTool(world, ['--init-pin', '--slot', '0', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', PIN]));
    }
    return world;
  } catch (error) {
    await daemon.stop();
    removeHome(daemon.home);
    removeDir(work);
    throw error;
  }
}

/** pkcs11-tool --module libntls-pkcs11.so with the world's environment. */
export function moduleTool(world: ModuleWorld, args: string[], options: RunOptions = {}): Promise<ToolResult> {
  return run('pkcs11-tool', ['--module', world.module, ...args], { cwd: world.work, timeoutMs: 60_000, ...options, env: { ...world.env, ...options.env } });
}

/** Writes the module's own settings file (pkcs11-module.conf) in the config folder. */
export function writeModuleConfig(world: ModuleWorld, lines: string[]): void {
  writeFileSync(join(world.folder, 'pkcs11-module.conf'), lines.join('\n') + '\n');
}

/** Builds fixtures/<name>.c with cc (the PKCS#11 headers pkcs11js ships, and the module's 3.0 ones) into dir/<name>. */
export async function buildFixture(dir: string, name: string): Promise<string> {
  const pkcs11js = dirname(createRequire(import.meta.url).resolve('pkcs11js/package.json'));
  const out = join(dir, name);
  mkdirSync(dir, { recursive: true });
  const r = await run('cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-O1', '-I', join(pkcs11js, 'includes', 'pkcs11'), '-I', moduleHeaders,
    '-o', out, join(here, 'fixtures', `${name}.c`), '-ldl', '-lpthread']);
  if (r.status !== 0) throw new Error(`cannot build ${name}:\n${explain(r)}`);
  return out;
}

/** Builds fixtures/module-check.c. */
export function buildModuleCheck(dir: string): Promise<string> {
  return buildFixture(dir, 'module-check');
}

/** module-check MODULE ARGS... ; its "name=value" lines as a map. */
export async function moduleCheck(program: string, module: string, args: string[], options: RunOptions = {}): Promise<{ result: ToolResult; values: Map<string, string> }> {
  const result = await run(program, [module, ...args], { timeoutMs: 120_000, ...options });
  const values = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0 && !line.startsWith('FAIL')) values.set(line.slice(0, at), line.slice(at + 1));
  }
  return { result, values };
}

export { P11KIT_CLIENT };
