// SoftHSM2 (Debian package softhsm2) as the PKCS#11 module behind ntls: a token folder and
// configuration of its own per test, tokens made with softhsm2-util. A missing tool fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  label: string;
  serial: string;
  soPin: string;
  userPin: string;
}

export class SoftHsm {
  readonly dir: string;
  readonly conf: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ntls-softhsm-'));
    mkdirSync(join(this.dir, 'tokens'));
    this.conf = join(this.dir, 'softhsm2.conf');
    writeFileSync(this.conf, `directories.tokendir = ${join(this.dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  }

  /** The environment a process needs to see these tokens (the daemon, pkcs11-tool on the module). */
  get env(): NodeJS.ProcessEnv {
    return { SOFTHSM2_CONF: this.conf };
  }

  initToken(label: string, soPin: string, userPin: string): SoftHsmToken {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin], { env: { ...process.env, ...this.env }, stdio: 'pipe' });
    const slots = execFileSync('softhsm2-util', ['--show-slots'], { env: { ...process.env, ...this.env }, encoding: 'utf8' });
    // Each slot block lists "Serial number:" then "Label:"; take the serial of the block with this label.
    const blocks = slots.split(/\nSlot /);
    const block = blocks.find((b) => new RegExp(`Label:\\s+${label}\\s*\\n`).test(b + '\n'));
    const serial = /Serial number:\s+(\S+)/.exec(block ?? '')?.[1];
    if (!serial) throw new Error(`softhsm2-util made no token labelled ${label}:\n${slots}`);
    return { label, serial, soPin, userPin };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
