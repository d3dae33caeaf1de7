// The bare Node.js reference for bench:connects, run as its own process: a TLS server with the
// daemon's certificate and key that requires a client certificate (the bench client's, pinned
// as the only CA), answers one byte per connection and lets the client close. Prints its port.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';

const [certFile, keyFile, clientCertFile] = process.argv.slice(2);
const server = createServer({
  cert: readFileSync(certFile!), key: readFileSync(keyFile!), ca: readFileSync(clientCertFile!),
  requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
}, (socket) => {
  socket.setNoDelay(true);
  socket.once('data', () => socket.write(Buffer.from([1])));
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
