// Loading of the committed captures (fixtures/*.json, written by capture/capture.ts) and the
// round-trip check shared by the fixture test and the live test.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import {
  decodeRequest, decodeResponse, encodeRequest, encodeResponse, type P11KitRequest, type P11KitResponse,
} from '../../../src/protocol/p11kit/index.js';
import type { CapturedSession, ScenarioCapture } from './capture/capture.js';

export const FIXTURE_DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');

export function loadCaptures(): ScenarioCapture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(FIXTURE_DIR, f), 'utf8')) as ScenarioCapture);
}

export interface DecodedExchange {
  request: P11KitRequest;
  response: P11KitResponse;
}

/**
 * Decodes every request and response of a session, checks that each re-encodes to the captured
 * bytes exactly and that the server echoed the call code; returns the decoded messages.
 */
export function roundTrip(session: CapturedSession, label: string): DecodedExchange[] {
  const version = session.serverVersion ?? 0;
  const out: DecodedExchange[] = [];
  session.exchanges.forEach((ex, i) => {
    const where = `${label} #${i}`;
    const reqBody = Buffer.from(ex.request.body, 'hex');
    const req = decodeRequest(reqBody, { version });
    if (!req.ok) throw new Error(`${where}: request does not decode: ${req.error.message}`);
    const reenc = encodeRequest(req.value, { version });
    expect(reenc.ok && reenc.value.toString('hex'), `${where} ${req.value.call} request re-encoding`).toBe(ex.request.body);
    expect(ex.response, `${where}: no response captured`).not.toBeNull();
    const respBody = Buffer.from(ex.response!.body, 'hex');
    const mechanism = (req.value.args as { mechanism?: { type: number } | null }).mechanism;
    const resp = decodeResponse(respBody, req.value.call, { version, mechanismType: mechanism?.type });
    if (!resp.ok) throw new Error(`${where}: ${req.value.call} response does not decode: ${resp.error.message}`);
    const renc = encodeResponse(resp.value);
    expect(renc.ok && renc.value.toString('hex'), `${where} ${req.value.call} response re-encoding`).toBe(ex.response!.body);
    expect(ex.response!.code, `${where}: call code echoed`).toBe(ex.request.code);
    expect(ex.response!.options, `${where}: server options`).toBe('');
    out.push({ request: req.value, response: resp.value });
  });
  return out;
}
