/**
 * Atomic metadata writes: write a temp file next to the target, fsync it, rename it over the
 * target, fsync the directory. A crash leaves either the old or the new content, never a torn file.
 * (Local to image/ until the shared fsutil/atomic.ts lands on main.)
 */
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fromNodeError } from '../errors.js';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await fsyncDir(dir);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromNodeError(e, 'writeFileAtomic', { path });
  }
}
