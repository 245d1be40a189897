/** Small filesystem helpers of the store: exact-mode mkdir, existence, Docker's EnsureRemoveAll. */
import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { fromNodeError, hasCode } from '../errors.js';
import { recursiveUnmount, unmount } from '../mount/index.js';

/** A catch handler that swallows only the named codes. */
export const ignoreCodes =
  (...codes: string[]) =>
  (e: unknown): void => {
    if (!hasCode(e, ...codes)) throw e;
  };

/** mkdir that accepts an existing dir, then sets `mode` exactly (umask does not apply). */
export async function mkdirMode(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path, { mode });
  } catch (e) {
    if (!hasCode(e, 'EEXIST')) throw e;
  }
  await chmod(path, mode);
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (hasCode(e, 'ENOENT', 'ENOTDIR')) return false;
    throw fromNodeError(e, 'lstat', { path });
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return !hasCode(e, 'ESRCH');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Docker's EnsureRemoveAll: unmount everything below `dir`, remove it; on EBUSY unmount the busy
 * path and retry, up to 50 × 100 ms. A missing dir is success.
 */
export async function ensureRemoveAll(dir: string): Promise<void> {
  recursiveUnmount(dir);
  for (let attempt = 0; ; attempt++) {
    try {
      await rm(dir, { recursive: true, force: true });
      return;
    } catch (e) {
      if (attempt >= 50 || !hasCode(e, 'EBUSY', 'ENOTEMPTY')) throw fromNodeError(e, 'remove', { path: dir });
      const busy = (e as { path?: string }).path;
      if (busy !== undefined) unmount(busy, true);
      recursiveUnmount(dir);
      await sleep(100);
    }
  }
}
