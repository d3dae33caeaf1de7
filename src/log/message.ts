// The shape of one guide message. The catalogue (catalogue.ts) holds every one of them;
// nothing else in the code writes free-form log text.
import { printable } from './printable.js';

/** Syslog severity as it appears after the facility ("local5 crit"). */
export type Severity = 'crit' | 'err' | 'warn' | 'info' | 'debug';
/** Level label inside the message ("NTLS [pid]: critical : ..."). */
export type Label = 'critical' | 'error' | 'warning' | 'info' | 'debug';

/** Which part of the guide a message comes from; `logs explain` reports it. */
export type Section =
  | 'datapath-expected'
  | 'datapath-unexpected'
  | 'datapath-debug'
  | 'processor-expected'
  | 'processor-unexpected'
  | 'processor-debug'
  /** The client's own lines (HA groups): the guide has none for them. */
  | 'client-expected'
  | 'client-unexpected';

/**
 * How the text follows the prefix:
 * - 'coded':   "<label> : <code> : <text>" (most messages)
 * - 'spaced':  "<label> : <code> <text>" (some processor errors print no colon)
 * - 'debug':   "<label> : <code>     <text>" (datapath "Unexpected ... response" lines)
 * - 'bare':    "<text>" with no level or code at all (USB token and instance-removed lines)
 */
export type Shape = 'coded' | 'spaced' | 'debug' | 'bare';

/** Names of `{placeholders}` in a template, as a type. */
export type TemplateParams<T extends string> = T extends `${string}{${infer P}}${infer Rest}`
  ? { [K in P | keyof TemplateParams<Rest>]: string | number }
  : Record<never, never>;

export interface MessageDefinition<T extends string = string> {
  /** Syslog severity written after the facility. */
  readonly severity: Severity;
  /** Inner level label; unused for 'bare' lines. */
  readonly label: Label;
  /** Numeric code: 0, 0xc0000002, 0x300000 ... */
  readonly code: number;
  /** RC_ / LUNA_RET_ name the guide attaches, or null. */
  readonly rc: string | null;
  /** Text to the letter, with `{name}` placeholders for the variable parts. */
  readonly template: T;
  readonly shape: Shape;
  readonly section: Section;
  /** The guide's heading this message sits under. */
  readonly heading: string;
  /** Example values reproducing the guide's own example line. */
  readonly example: TemplateParams<T>;
  /**
   * Placeholders that take one of a closed set the guide names: the command processor entry
   * points, "enabled" / "disabled" / "NOT enabled", the connection state strings.
   */
  readonly values: { readonly [K in keyof TemplateParams<T>]?: readonly string[] };
}

export interface Message<T extends string = string> extends MessageDefinition<T> {
  /** Catalogue key, e.g. "connectionAccepted". */
  readonly id: string;
}

export function formatCode(code: number): string {
  return code === 0 ? '0' : `0x${code.toString(16)}`;
}

const placeholder = /\{(\w+)\}/g;

export function renderText(message: MessageDefinition, params: Record<string, string | number>): string {
  return message.template.replace(placeholder, (whole, name: string) =>
    name in params ? printable(String(params[name])) : whole,
  );
}

/** Everything after "NTLS [pid]: ": the inner level, the code and the text in the message's shape. */
export function renderBody(message: MessageDefinition, params: Record<string, string | number>): string {
  const text = renderText(message, params);
  const code = formatCode(message.code);
  switch (message.shape) {
    case 'coded':
      return `${message.label} : ${code} : ${text}`;
    case 'spaced':
      return `${message.label} : ${code} ${text}`;
    case 'debug':
      return `${message.label} : ${code}     ${text}`;
    case 'bare':
      return text;
  }
}
