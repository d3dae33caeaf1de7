import { sayAuditFailure } from '../audit/audit-log.js';
import { existsSync, rmSync } from 'node:fs';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ADMIN_MAX_LINE, AdminError, type AdminRequest, type AdminResponse } from './protocol.js';

export type AdminHandler = (args: Record<string, unknown>, who?: unknown) => unknown;

/**
 * A handler's result may carry, under this key, what its request resolved to (the serial a
 * partition name named): kept by the audit trail, never sent (JSON leaves symbol keys out).
 */
export const RESOLVED = Symbol('resolved');

/** Told of every answered request (the audit trail). */
export type AdminObserver = (command: string, args: Record<string, unknown>, who: unknown, outcome: { ok: true; resolved?: Record<string, unknown> } | { ok: false; code: string }) => void;

/** `result` with what its request resolved to, for the audit trail. */
export function withResolved<T extends object>(result: T, resolved: Record<string, unknown>): T {
  return Object.assign(result, { [RESOLVED]: resolved });
}

function resolvedOf(result: unknown): Record<string, unknown> | undefined {
  return typeof result === 'object' && result !== null ? (result as { [RESOLVED]?: Record<string, unknown> })[RESOLVED] : undefined;
}

function isRequest(value: unknown): value is AdminRequest {
  const v = value as AdminRequest;
  return typeof v === 'object' && v !== null && typeof v.id === 'number' && typeof v.command === 'string'
    && (v.args === undefined || (typeof v.args === 'object' && v.args !== null));
}

/** Is something already answering on this socket path? */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Serves admin requests on a unix socket readable and writable by the daemon's user only
 * (mode 0600): the file permission is the access check.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(readonly path: string, private readonly handlers: ReadonlyMap<string, AdminHandler>, private readonly observer?: AdminObserver) {
    this.server = createServer((socket) => this.serve(socket));
  }

  async listen(): Promise<void> {
    if (existsSync(this.path)) {
      if (await answering(this.path)) throw new AdminError('NTLS_ERR_ADMIN_IN_USE', `${this.path} is served by another process`);
      rmSync(this.path, { force: true });
    }
    await listenOwnerOnly(this.server, this.path);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > ADMIN_MAX_LINE) {
        socket.end(JSON.stringify({ id: 0, ok: false, error: { code: 'NTLS_ERR_ADMIN_REQUEST', message: 'request too large' } }) + '\n');
        return;
      }
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        void this.answer(line).then((response) => socket.write(JSON.stringify(response) + '\n'));
      }
    });
  }

  private async answer(line: string): Promise<AdminResponse> {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      return { id: 0, ok: false, error: { code: 'NTLS_ERR_ADMIN_REQUEST', message: 'request is not JSON' } };
    }
    if (!isRequest(request)) return { id: 0, ok: false, error: { code: 'NTLS_ERR_ADMIN_REQUEST', message: 'request lacks id or command' } };
    const handler = this.handlers.get(request.command);
    if (!handler) {
      return { id: request.id, ok: false, error: { code: 'NTLS_ERR_ADMIN_UNKNOWN_COMMAND', message: `unknown admin command ${request.command}` } };
    }
    const response = await this.run(request, handler);
    try {
      this.observer?.(request.command, request.args ?? {}, request.who, response.ok ? { ok: true, resolved: resolvedOf(response.result) } : { ok: false, code: response.error.code });
    } catch (error) {
      // The audit trail could not be written (disk full...): the answer still goes out.
      sayAuditFailure(error);
    }
    return response;
  }

  private async run(request: AdminRequest, handler: AdminHandler): Promise<AdminResponse> {
    try {
      return { id: request.id, ok: true, result: await handler(request.args ?? {}, request.who) };
    } catch (error) {
      if (error instanceof AdminError) return { id: request.id, ok: false, error: error.toFailure() };
      const { code, hint } = error as { code?: unknown; hint?: unknown };
      return {
        id: request.id, ok: false,
        error: {
          code: typeof code === 'string' ? code : 'NTLS_ERR_ADMIN_FAILED',
          message: (error as Error).message,
          hint: typeof hint === 'string' ? hint : undefined,
        },
      };
    }
  }
}
