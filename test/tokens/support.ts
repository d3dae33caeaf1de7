// Shared set-up for the token tests: images made with a cheap KDF, a logger that keeps what it
// writes (debug included), and the options a deployed token's HSM is opened with.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { singlePartMechanisms, softwareMechanisms } from '../../src/hsm/mechanisms/index.js';
import { DEFAULT_PIN_POLICY } from '../../src/hsm/index.js';
import { Logger } from '../../src/log/logger.js';
import type { Message } from '../../src/log/message.js';
import { createImage, devicesFolder, type ImageHsmOptions, type ImageInfo } from '../../src/tokens/image.js';
import { FAST_KDF } from '../hsm/support.js';

export const TOKEN_SO_PIN = 'token-so-1';
export const TOKEN_PIN = 'token-user-1';
export const KDF = { cost: FAST_KDF.cost, blockSize: 8, parallelization: 1 };

export const imageOptions: ImageHsmOptions = {
  mechanisms: softwareMechanisms, singlePartMechanisms, maxPartitions: 1, kdf: FAST_KDF,
};

export function makeImage(path: string, label: string, serial?: string): Promise<ImageInfo> {
  return createImage(path, { label, serial, soPin: TOKEN_SO_PIN, userPin: TOKEN_PIN, kdf: KDF, pinPolicy: DEFAULT_PIN_POLICY });
}

export function devices(home: string): string {
  const folder = devicesFolder(home);
  mkdirSync(folder, { recursive: true });
  return folder;
}

export const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A logger with debug on that keeps each line's text and message id. */
export function recordingLogger(): { logger: Logger; lines: Array<{ id: string; body: string }>; bodies(): string[] } {
  const logger = new Logger({ debug: true });
  const lines: Array<{ id: string; body: string }> = [];
  logger.onLine((line: string, message: Message) => lines.push({ id: message.id, body: line.slice(line.indexOf(']: ') + 3) }));
  return { logger, lines, bodies: () => lines.map((l) => l.body) };
}

export async function until(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { join };
