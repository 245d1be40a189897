/**
 * Atomic file replacement: the content is written to a temp file `.tmp-<base>*` in the same
 * directory, fsynced, chmodded to the exact mode (umask does not apply), renamed over the target
 * and the directory fsynced. A crash leaves either the old file or the new one, never a short file
 * (moby's "empty link/lower after power loss", issue 35747).
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fromNodeError, hasCode } from '../errors.js';

/** fsync a directory so a rename or create in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some filesystems refuse fsync on a directory; durability is then best effort.
    if (!hasCode(e, 'EINVAL', 'EBADF', 'EISDIR')) throw fromNodeError(e, 'fsync', { path: dir });
  } finally {
    await fh?.close();
  }
}

/**
 * Write `data` to `path` atomically with exactly `mode`.
 * @throws OverlayError ENOENT when the directory does not exist (Docker says "invalid output path").
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.tmp-${basename(path)}${randomBytes(6).toString('hex')}`);
  let fh;
  try {
    fh = await open(tmp, 'wx', mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.chmod(mode);
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    // Best-effort cleanup on the error path: the first error is the one the caller needs.
    await fh?.close().catch((c: unknown) => void c);
    await unlink(tmp).catch((c: unknown) => {
      if (!hasCode(c, 'ENOENT')) throw fromNodeError(c, 'unlink', { path: tmp, cause: e });
    });
    throw fromNodeError(e, 'writeFileAtomic', { path });
  }
  await fsyncDir(dir);
}
