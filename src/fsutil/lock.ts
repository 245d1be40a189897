/**
 * A store-wide advisory lock (flock on `<root>/lock`) so that separate processes — one CLI
 * command each — never interleave their changes to one data root: mutating operations hold it
 * exclusively, reads share it. flock is taken non-blocking and polled, so the event loop stays
 * free while waiting; the kernel drops the lock if the holder dies, so a crash never wedges the
 * store. Re-entrant within a process (nested library calls share the outer hold).
 */
import { closeSync, mkdirSync, openSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError, hasCode } from '../errors.js';
import { funlock, tryFlock } from '../sys/libc.js';

export type LockMode = 'shared' | 'exclusive';

export interface LockOptions {
  /** Give up after this long (default: wait forever). */
  timeoutMs?: number;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: () => void;
}

interface Held {
  fd: number;
  mode: LockMode;
  depth: number;
}

const held = new Map<string, Held>();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function openLockFile(path: string): number {
  try {
    return openSync(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  } catch (e) {
    // An unprivileged reader of a root-owned store can still lock a file it can only read.
    if (hasCode(e, 'EACCES', 'EROFS')) return openSync(path, fsc.O_RDONLY);
    throw e;
  }
}

/**
 * Take the lock of data root `root` in `mode`; returns its release function (idempotent).
 * A nested acquire within the process shares the outer hold.
 */
export async function acquireRootLock(root: string, mode: LockMode, opts: LockOptions = {}): Promise<() => void> {
  const path = join(root, 'lock');
  const mine = held.get(path);
  if (mine !== undefined && (mine.mode === 'exclusive' || mode === 'shared')) {
    mine.depth++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        mine.depth--;
      }
    };
  }
  if (mine !== undefined) {
    throw new OverlayError('EDEADLK', 'lock', { path, reason: 'lock-upgrade', detail: 'cannot take the store lock exclusively while holding it shared' });
  }
  let fd: number;
  try {
    mkdirSync(root, { recursive: true, mode: 0o710 }); // dockerd's data-root mode
    fd = openLockFile(path);
  } catch (e) {
    throw fromNodeError(e, 'lock', { path });
  }
  try {
    const start = Date.now();
    let waited = false;
    while (!tryFlock(fd, mode === 'exclusive', path)) {
      if (!waited) {
        waited = true;
        opts.onWait?.();
      }
      if (opts.timeoutMs !== undefined && Date.now() - start > opts.timeoutMs) {
        throw new OverlayError('EBUSY', 'lock', { path, reason: 'store-locked', detail: `another process held the store lock for more than ${opts.timeoutMs} ms` });
      }
      await sleep(25);
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const h: Held = { fd, mode, depth: 1 };
  held.set(path, h);
  return () => {
    if (h.depth <= 0) return;
    h.depth--;
    if (h.depth === 0) {
      held.delete(path);
      funlock(fd);
      closeSync(fd);
    }
  };
}

/** Run `fn` holding the lock of data root `root` in `mode`. */
export async function withRootLock<T>(root: string, mode: LockMode, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireRootLock(root, mode, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}
