/**
 * Docker's two size measures: `directory.Size` (what a layer dir occupies, counted as Σ st_size of
 * non-directory entries, each inode once) and `ChangesSize` (Σ st_size of the A/C non-directories of
 * a change list, hard links once). Neither counts blocks: sparse files count their full length.
 */
import { lstatSync, readdirSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import type { Change } from './types.js';
import { isDirStat } from './walk.js';

function lstatOrNull(p: string | Buffer): BigIntStats | null {
  try {
    return lstatSync(p, { bigint: true });
  } catch (e) {
    if (isNotFound(e)) return null;
    throw fromNodeError(e, 'lstat', { path: p.toString() });
  }
}

/** Docker's directory.Size: Σ st_size of non-dir entries, each inode once. */
export async function directorySize(dir: string): Promise<number> {
  const root = lstatOrNull(dir);
  if (root === null) throw new OverlayError('ENOENT', 'directorySize', { path: dir });
  const seen = new Set<bigint>();
  let size = 0n;
  const visit = async (d: Buffer): Promise<void> => {
    let names: Buffer[];
    try {
      names = readdirSync(d, { encoding: 'buffer' });
    } catch (e) {
      if (isNotFound(e)) return; // vanished while walking: ignored, as Docker does
      throw fromNodeError(e, 'readdir', { path: d.toString('utf8') });
    }
    for (const name of names) {
      const p = Buffer.concat([d, Buffer.from('/'), name]);
      const st = lstatOrNull(p);
      if (st === null) continue;
      if (isDirStat(st)) {
        await visit(p);
        continue;
      }
      if (st.size === 0n || seen.has(st.ino)) continue;
      seen.add(st.ino);
      size += st.size;
    }
  };
  if (isDirStat(root)) await visit(Buffer.from(dir.replace(/\/+$/, '') || '/', 'utf8'));
  else if (root.size > 0n) size += root.size;
  return Number(size);
}

/** Docker's ChangesSize: Σ lstat sizes under `root` of non-dir A/C entries, hard links once. */
export async function changesSize(root: string, changes: Change[]): Promise<number> {
  const seen = new Set<bigint>();
  let size = 0n;
  for (const c of changes) {
    if (c.kind === 'D') continue;
    const st = lstatOrNull(c.pathBytes === undefined ? join(root, c.path) : Buffer.concat([Buffer.from(join(root, '/')), c.pathBytes]));
    if (st === null || isDirStat(st)) continue; // Docker logs a vanished path and goes on
    if (st.nlink > 1n) {
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
    }
    size += st.size;
  }
  return Number(size);
}
