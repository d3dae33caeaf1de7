// Progress for operations that take a while (key generation, restarts): on a terminal, a line
// on stderr counting the seconds until done; elsewhere nothing, so scripts read clean output.

/** `detail`, when given, is drawn after the label on each tick (e.g. "120/500 objects"). */
export async function withProgress<T>(label: string, work: Promise<T>, detail?: () => string): Promise<T> {
  if (!process.stderr.isTTY) return work;
  const started = Date.now();
  const frames = ['|', '/', '-', '\\'];
  let tick = 0;
  const draw = () => process.stderr.write(`\r${frames[tick++ % frames.length]} ${label}${detail ? ` ${detail()}` : ''} ${((Date.now() - started) / 1000).toFixed(1)} s\x1b[K`);
  draw();
  const timer = setInterval(draw, 100);
  try {
    const result = await work;
    process.stderr.write(`\r✓ ${label} ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return result;
  } catch (error) {
    process.stderr.write(`\r✗ ${label}\n`);
    throw error;
  } finally {
    clearInterval(timer);
  }
}
