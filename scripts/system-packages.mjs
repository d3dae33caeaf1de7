#!/usr/bin/env node
// The Debian (bookworm) packages that `npm install` builds with and the tests drive, in one list
// that both commands below read:
//
//   node scripts/system-packages.mjs install   installs what is missing (as root, or through
//                                              sudo), then checks: `npm run system-packages`
//   node scripts/system-packages.mjs check     checks, in a fraction of a second: `npm test` and
//                                              `npm run test:integration` begin with it
//
// A package counts as present when what the tests use of it is there: the commands on PATH,
// the files at the paths the tests load. When something is missing, one line on stderr names
// the packages and the command that installs them, and the exit status is 1. Plain Node with no
// dependency: it runs before `npm install`.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * `needs`: commands (looked up on PATH) and absolute paths (files) the package provides. g++,
 * make and python3 come first: `npm install` itself needs them (node-gyp builds pkcs11js,
 * native/keepalive, and better-sqlite3 when no prebuilt binary can be fetched).
 */
const PACKAGES = [
  { name: 'g++', needs: ['g++', 'cc'], for: 'node-gyp (native addons) and the faulty PKCS#11 module the passthrough tests build' },
  { name: 'make', needs: ['make'], for: 'node-gyp' },
  { name: 'python3', needs: ['python3'], for: 'node-gyp' },
  { name: 'ca-certificates', needs: ['/etc/ssl/certs/ca-certificates.crt'], for: 'HTTPS for apt and npm' },
  { name: 'openssl', needs: ['openssl'], for: 'cross-checks of keys, signatures and certificates' },
  { name: 'p11-kit', needs: ['p11-kit'], for: '`p11-kit server`, the reference server of the protocol' },
  { name: 'p11-kit-modules', needs: ['/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so', '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so'], for: 'p11-kit-client.so, the stock client of the protocol' },
  { name: 'opensc', needs: ['pkcs11-tool'], for: 'pkcs11-tool' },
  { name: 'softhsm2', needs: ['softhsm2-util', '/usr/lib/softhsm/libsofthsm2.so'], for: 'the module behind the passthrough backend, and the peer of the capture tests' },
  { name: 'libengine-pkcs11-openssl', needs: ['/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so'], for: 'OpenSSL through PKCS#11' },
  { name: 'gnutls-bin', needs: ['p11tool', 'gnutls-cli'], for: 'GnuTLS p11tool, and TLS clients with token keys' },
  { name: 'openssh-client', needs: ['ssh-keygen', 'ssh-agent', 'ssh-add'], for: 'OpenSSH keys and ssh-agent through PKCS#11' },
  { name: 'libnss3-tools', needs: ['certutil', 'modutil'], for: 'NSS (as Firefox and Chromium load a module)' },
  { name: 'iproute2', needs: ['ip', 'ss'], for: 'socket and link inspection' },
  { name: 'stunnel4', needs: ['stunnel4'], for: 'TLS front ends in the tests' },
  { name: 'openjdk-17-jdk-headless', needs: ['java', 'javac', 'keytool', 'jarsigner'], for: 'Java SunPKCS11, keytool and jarsigner on libntls-pkcs11.so' },
  { name: 'postgresql', needs: ['/usr/lib/postgresql/15/bin/initdb', '/usr/lib/postgresql/15/bin/postgres'], for: 'the PostgreSQL store' },
];

const isRoot = () => process.getuid?.() === 0;

function onPath(command, path = process.env.PATH ?? '') {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, command);
    try {
      if (statSync(file).isFile()) {
        accessSync(file, constants.X_OK);
        return true;
      }
    } catch {
      // not in this folder
    }
  }
  return false;
}

function present(need) {
  return need.startsWith('/') ? existsSync(need) : onPath(need);
}

/** The packages with something missing, and what is missing. */
function missingPackages() {
  return PACKAGES
    .map((p) => ({ name: p.name, missing: p.needs.filter((n) => !present(n)) }))
    .filter((p) => p.missing.length > 0);
}

function installCommand(names) {
  return `${isRoot() ? '' : 'sudo '}apt-get install -y --no-install-recommends ${names.join(' ')}`;
}

/** The one line: what is missing, for what, and the command that installs it. */
function missingLine(missing) {
  const what = missing.map((p) => `${p.name} (${p.missing.join(', ')})`).join(', ');
  return `ntls: missing Debian package${missing.length === 1 ? '' : 's'} that the tests drive: ${what}. `
    + `Install with \`${installCommand(missing.map((p) => p.name))}\` (or \`npm run system-packages\`), then run again.`;
}

function check() {
  const missing = missingPackages();
  if (missing.length === 0) return 0;
  process.stderr.write(missingLine(missing) + '\n');
  return 1;
}

/** Runs apt-get as root, or through sudo (non-interactive without a terminal); false on failure. */
function apt(args) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [file, fullArgs] = isRoot()
    ? ['apt-get', args]
    : ['sudo', [...(process.stdin.isTTY ? [] : ['-n']), 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args]];
  const run = spawnSync(file, fullArgs, { stdio: 'inherit', env });
  return !run.error && run.status === 0;
}

function install() {
  const missing = missingPackages();
  if (missing.length === 0) {
    process.stdout.write('ntls: the Debian packages the tests drive are installed.\n');
    return 0;
  }
  const names = missing.map((p) => p.name);
  const asRoot = `As root, run \`apt-get install -y --no-install-recommends ${names.join(' ')}\`, then run again.`;
  const refuse = (why, fix = asRoot) => {
    process.stderr.write(`ntls: cannot install ${names.join(' ')}: ${why}. ${fix}\n`);
    return 1;
  };
  if (!onPath('apt-get')) return refuse('apt-get not found (these are Debian bookworm packages)', 'Install their equivalents, then run again.');
  if (!isRoot() && !onPath('sudo')) return refuse('not root, and sudo is not installed');
  process.stdout.write(`ntls: installing ${names.join(' ')}\n`);
  if (!apt(['update']) || !apt(['install', '-y', '--no-install-recommends', ...names])) {
    return refuse(isRoot() ? 'apt-get failed (see above)' : 'sudo apt-get failed (see above)');
  }
  return check();
}

const [command, ...extra] = process.argv.slice(2);
if (command === 'install') process.exit(install());
else if (command === 'check' && extra.length === 0) process.exit(check());
else {
  process.stderr.write('usage: node scripts/system-packages.mjs install | check\n');
  process.exit(2);
}
