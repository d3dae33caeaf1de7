import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';

/** The home's folders that hold secrets (the HSM store, the audit log and key, the server key): owner-only, 0700. */
export const SECRET_FOLDERS = ['hsm', 'audit', 'server'] as const;

/** Where everything of one ntls service lives. */
export interface HomeLayout {
  root: string;
  configFile: string;
  serverCertificate: string;
  serverKey: string;
  verifyLocation: string;
  logDirectory: string;
  logFile: string;
  pidFile: string;
}

export function resolveHome(explicit?: string): string {
  return resolve(explicit ?? process.env.NTLS_HOME ?? 'ntls-home');
}

export function homeLayout(root: string, config: Config): HomeLayout {
  const logDirectory = join(root, 'logs');
  return {
    root,
    configFile: join(root, 'ntls.json'),
    serverCertificate: resolve(root, config.server.certificateFile),
    serverKey: resolve(root, config.server.keyFile),
    verifyLocation: resolve(root, config.clients.verifyLocation),
    logDirectory,
    logFile: join(logDirectory, 'lunalogs'),
    pidFile: join(root, 'ntls.pid'),
  };
}
