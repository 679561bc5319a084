import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Things a benchmark must undo even when it fails or the run is interrupted: child processes and
 * scratch databases. Each is registered when created and unregistered when released normally; the
 * runner calls {@link runCleanups} on SIGINT/SIGTERM so Ctrl-C leaves no server or database behind.
 */
const pending = new Set<() => Promise<void>>();

export function registerCleanup(release: () => Promise<void>): () => void {
  pending.add(release);
  return () => pending.delete(release);
}

export async function runCleanups(): Promise<void> {
  const all = [...pending].reverse();
  pending.clear();
  for (const release of all) await release().catch(() => undefined);
}

/** A new temporary directory, removed by `remove()` or, failing that, by {@link runCleanups}. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const remove = () => {
    unregister();
    rmSync(dir, { recursive: true, force: true });
  };
  const unregister = registerCleanup(async () => remove());
  return { dir, remove };
}
