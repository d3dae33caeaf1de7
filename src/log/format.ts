import type { Message, Severity } from './message.js';
import { renderBody } from './message.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** "2012 Feb 29 12:05:01", local time, as the guide's lines begin. */
export function formatTimestamp(at: Date): string {
  return `${at.getFullYear()} ${MONTHS[at.getMonth()]} ${pad2(at.getDate())} ` +
    `${pad2(at.getHours())}:${pad2(at.getMinutes())}:${pad2(at.getSeconds())}`;
}

export interface LineOrigin {
  host: string;
  pid: number;
}

/**
 * One lunalogs line in the guide's shape:
 * `2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: info : 0 : Starting up NTLS........`
 * The doubled spaces after the host and the severity are the guide's.
 */
export function formatLine(at: Date, origin: LineOrigin, severity: Severity, body: string): string {
  return `${formatTimestamp(at)} ${origin.host}  local5 ${severity}  NTLS [${origin.pid}]: ${body}`;
}

export function formatMessage(at: Date, origin: LineOrigin, message: Message, params: Record<string, string | number>): string {
  return formatLine(at, origin, message.severity, renderBody(message, params));
}
