import type { Socket } from 'node:net';

/** An IPv4-mapped IPv6 address ("::ffff:10.0.0.1") shown as the IPv4 address it is. */
export function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** "192.168.0.100/40847", the guide's way of naming a peer. */
export function peerOf(socket: Socket): string {
  return `${plainAddress(socket.remoteAddress)}/${socket.remotePort ?? 0}`;
}
