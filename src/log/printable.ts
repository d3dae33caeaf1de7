// Text that came from a client (a token label set by its SO, a name it sent) can hold control
// characters: a newline that forges a log line or a table row, an escape sequence that clears an
// operator's terminal. Where such text meets a log line or a person's screen, they are shown as
// \xNN instead.

// eslint-disable-next-line no-control-regex -- control characters are what this finds
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
