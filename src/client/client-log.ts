// The client side's log: the guide's messages, in its line format, in
// <config folder>/logs/ntls-client.log. A log that cannot be written never stops a command.
import { join } from 'node:path';
import { Logger } from '../log/logger.js';

export function clientLogFile(folder: string): string {
  return join(folder, 'logs', 'ntls-client.log');
}

export function openClientLog(folder: string): Logger {
  try {
    return new Logger({ file: clientLogFile(folder), maxBytes: 1024 * 1024, keep: 2 });
  } catch {
    return new Logger({});
  }
}
