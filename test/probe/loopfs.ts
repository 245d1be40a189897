/** Test helper: a small filesystem image on a loop device, mounted under a temp dir. */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface LoopFs {
  mnt: string;
  /** Unmount (the loop device is auto-cleared). */
  close(): void;
}

/** Returns the mounted fs, or a string saying why it could not be made. */
export function makeLoopFs(dir: string, name: string, mkfs: string[], sizeMb = 300): LoopFs | string {
  const img = join(dir, `${name}.img`);
  const mnt = join(dir, name);
  mkdirSync(mnt, { recursive: true });
  const tr = spawnSync('truncate', ['-s', `${sizeMb}M`, img]);
  if (tr.status !== 0) return `truncate failed: ${tr.stderr.toString()}`;
  const mk = spawnSync(mkfs[0] ?? 'false', [...mkfs.slice(1), img]);
  if (mk.status !== 0) return `${mkfs.join(' ')} failed: ${mk.stderr.toString().trim()}`;
  const mo = spawnSync('mount', ['-o', 'loop', img, mnt]);
  if (mo.status !== 0) return `mount -o loop failed: ${mo.stderr.toString().trim()}`;
  return {
    mnt,
    close: () => {
      spawnSync('umount', [mnt]);
    },
  };
}
