import { connect } from 'node:net';
import { join } from 'node:path';
import { currentOperator } from '../audit/audit-log.js';
import { ADMIN_SOCKET, AdminError, type AdminResponse } from './protocol.js';

/** Sends one admin request to the daemon of `home` and returns its result, or throws AdminError. */
export function callAdmin<T = unknown>(home: string, command: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
  const path = join(home, ADMIN_SOCKET);
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new AdminError('NTLS_ERR_ADMIN_TIMEOUT', `the daemon of ${home} did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ id: 1, command, args, who: currentOperator() }) + '\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      socket.end();
      const response = JSON.parse(buffered.slice(0, newline)) as AdminResponse;
      if (response.ok) resolve(response.result as T);
      else reject(new AdminError(response.error.code, response.error.message, response.error.hint));
    });
    // The daemon went away before answering (stopped, killed): said at once, not at the timeout.
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new AdminError('NTLS_ERR_ADMIN_CLOSED', `the daemon of ${home} closed the admin channel before answering`, 'see `ntls status` and the log'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new AdminError('NTLS_ERR_NO_DAEMON', `no daemon runs for ${home}`, `start one with \`ntls start --home ${home}\``));
      } else if (error.code === 'EACCES') {
        reject(new AdminError('NTLS_ERR_ADMIN_DENIED', `permission denied on ${path}`, 'run the command as the user the daemon runs as'));
      } else reject(new AdminError('NTLS_ERR_ADMIN_FAILED', error.message));
    });
  });
}
