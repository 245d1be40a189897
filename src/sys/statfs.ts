/** Filesystem type by statfs magic, with the names Docker prints (`fstype.FsNames`). */
import { statfs as statfsAsync } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { fromNodeError } from '../errors.js';

export const FS_MAGIC: Readonly<Record<number, string>> = {
  0x61756673: 'aufs',
  0x9123683e: 'btrfs',
  0x28cd3d45: 'cramfs',
  0xf15f: 'ecryptfs',
  0xef53: 'extfs',
  0xf2f52010: 'f2fs',
  0x65735546: 'fuse',
  0x47504653: 'gpfs',
  0x72b6: 'jffs2',
  0x3153464a: 'jfs',
  0x6969: 'nfs',
  0x794c7630: 'overlayfs',
  0x858458f6: 'ramfs',
  0x52654973: 'reiserfs',
  0x517b: 'smb',
  0x73717368: 'squashfs',
  0x01021994: 'tmpfs',
  0xa501fcf5: 'vxfs',
  0x58465342: 'xfs',
  0x2fc12fc1: 'zfs',
  0: 'unsupported',
};

export const OVERLAY_MAGIC = 0x794c7630;

export function fsName(magic: number): string {
  return FS_MAGIC[magic >>> 0] ?? '<unknown>';
}

/** statfs f_type as an unsigned number. */
export async function fsMagic(path: string): Promise<number> {
  try {
    const s = await statfsAsync(path);
    return Number(s.type) >>> 0;
  } catch (e) {
    throw fromNodeError(e, 'statfs', { path });
  }
}

export function fsMagicSync(path: string): number {
  try {
    return Number(statfsSync(path).type) >>> 0;
  } catch (e) {
    throw fromNodeError(e, 'statfs', { path });
  }
}
