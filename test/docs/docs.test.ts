// Every command in README.md and docs/*.md is run (docs/README.md says how): the ```sh blocks of
// each document run in order, in one bash, against a real daemon in a temporary home, with
// `ntls` and `ntls-client` on PATH and the client's config folder in a temporary HOME; each
// block must succeed. A block marked `<!-- tested-by: FILE -->` is run by that test instead
// (it must exist and name the document); `<!-- not-run: reason -->` is for the few that cannot
// run here. A block outside ```sh that looks like a command must be one of these too.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ntlsBin, repoRoot, startDaemon, type Daemon } from '../support/daemon.js';

const clientBin = join(repoRoot, 'dist/src/cli/ntls-client.js');

export interface DocBlock {
  /** 1-based line of the opening fence. */
  line: number;
  language: string;
  text: string;
  marker: { kind: 'tested-by' | 'not-run'; value: string } | null;
}

const RUN_LANGUAGES = new Set(['sh', 'bash', 'shell']);
/** Untagged or console blocks starting so are commands, and must be run or marked. */
const COMMAND_START = /^(\$ )?(ntls|ntls-client|npx|npm|pkcs11-tool|p11tool|openssl|export|cp|scp) /;

export function extractBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const comment = before >= 0 ? /^<!--\s*(tested-by|not-run):\s*(.+?)\s*-->$/.exec(lines[before]!.trim()) : null;
    blocks.push({
      line: i + 1, language: open[1]!, text: lines.slice(i + 1, end).join('\n'),
      marker: comment ? { kind: comment[1] as 'tested-by' | 'not-run', value: comment[2]! } : null,
    });
    i = end;
  }
  return blocks;
}

/**
 * The placeholders of docs/README.md, replaced by what this machine has: the server's host
 * name and port, and the client host's address.
 */
export function substitute(text: string, port: number): string {
  return text
    .replace(/--host hsm1\.example(?! --port)/g, `--host 127.0.0.1 --port ${port}`)
    .replace(/hsm1\.example:1792/g, `127.0.0.1:${port}`)
    .replace(/hsm1\.example/g, '127.0.0.1')
    .replace(/10\.0\.0\.7/g, '127.0.0.1');
}

const documents = ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

function run(script: string, env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch { /* gone */ }
      reject(new Error(`the blocks did not finish in ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      // Whatever a block left running in the background (a relay) goes with the run.
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch { /* gone */ }
      resolve({ status, output });
    });
  });
}

/** The temporary machine a document runs on: a home, a HOME, a bin folder, a work folder. */
function machine(): { root: string; home: string; work: string; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(join(tmpdir(), 'ntls-docs-'));
  const home = join(root, 'work', 'ntls-home');
  const work = join(root, 'work');
  const bin = join(root, 'bin');
  for (const folder of [home, bin, join(root, 'home')]) mkdirSync(folder, { recursive: true });
  // The docs test's home (docs/README.md): loopback, a free port, fast PIN derivation.
  writeFileSync(join(home, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 }, hsm: { kdfCost: 1024 } }, null, 2));
  for (const [name, target] of [['ntls', ntlsBin], ['ntls-client', clientBin]] as const) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${target}" "$@"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: join(root, 'home'),
    NTLS_HOME: home,
    XDG_RUNTIME_DIR: join(root, 'run'),
    LANG: 'C.UTF-8',
    TMPDIR: tmpdir(),
  };
  return { root, home, work, env };
}

describe.each(documents)('%s', (document) => {
  const blocks = extractBlocks(readFileSync(join(repoRoot, document), 'utf8'));
  const runnable = blocks.filter((b) => RUN_LANGUAGES.has(b.language) && !b.marker);

  it('every command block is run, or marked with the test that runs it, or why it cannot run', () => {
    for (const block of blocks) {
      const looksLikeCommands = RUN_LANGUAGES.has(block.language) || ((block.language === '' || block.language === 'console') && COMMAND_START.test(block.text.trimStart()));
      if (!looksLikeCommands) continue;
      if (!block.marker) {
        expect(RUN_LANGUAGES.has(block.language), `${document}:${block.line}: a command block outside \`\`\`sh is run by nothing; make it \`\`\`sh or mark it`).toBe(true);
        continue;
      }
      if (block.marker.kind === 'tested-by') {
        const file = join(repoRoot, block.marker.value);
        expect(existsSync(file), `${document}:${block.line}: ${block.marker.value} does not exist`).toBe(true);
        expect(readFileSync(file, 'utf8'), `${document}:${block.line}: ${block.marker.value} does not name ${document}`).toContain(basename(document));
      } else {
        expect(block.marker.value.length, `${document}:${block.line}: not-run needs a reason`).toBeGreaterThan(10);
      }
    }
  });

  // Registered only for a document with blocks to run (no skipped tests).
  if (runnable.length > 0) it(`its ${runnable.length} sh block(s) run, in order, against a real daemon`, async () => {
    const m = machine();
    let daemon: Daemon | null = null;
    try {
      daemon = await startDaemon(m.home);
      const script = ['set -eo pipefail', `cd ${JSON.stringify(m.work)}`];
      for (const block of runnable) {
        script.push(`echo "===== ${document}:${block.line}" >&2`, substitute(block.text, daemon.port));
      }
      const result = await run(script.join('\n'), m.env, m.work, 240_000);
      const failed = [...result.output.matchAll(/===== (\S+)/g)].at(-1)?.[1];
      expect(result.status, `${document}: the block at ${failed} failed:\n${result.output}`).toBe(0);
    } finally {
      await daemon?.stop();
      rmSync(m.root, { recursive: true, force: true });
    }
  }, 300_000);
});

/** Repository paths a document cites: `src/...`-style names in backticks, and relative links. */
export function citedPaths(markdown: string, document: string): string[] {
  const folder = document.includes('/') ? document.slice(0, document.lastIndexOf('/') + 1) : '';
  const named = [...markdown.matchAll(/`((?:src|test|docs|native|scripts|bench)\/[A-Za-z0-9_./-]*[A-Za-z0-9_/])`/g)].map((m) => m[1]!);
  const linked = [...markdown.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))
    .map((l) => join(folder, l));
  return [...new Set([...named.filter((n) => !n.includes('*')), ...linked])];
}

it.each(documents)('%s cites only paths that are in the repository', (document) => {
  const missing = citedPaths(readFileSync(join(repoRoot, document), 'utf8'), document).filter((p) => !existsSync(join(repoRoot, p)));
  expect(missing).toEqual([]);
});

it('docs/README.md defines the placeholders this test replaces', () => {
  const conventions = readFileSync(join(repoRoot, 'docs/README.md'), 'utf8');
  for (const placeholder of ['hsm1.example', '10.0.0.7', '$NTLS_HOME', 'tested-by', 'not-run', '$XDG_RUNTIME_DIR']) expect(conventions).toContain(placeholder);
});
