/**
 * d_type support of a filesystem: create a file in a fresh temp dir and read the dir with raw
 * getdents64 (Node's readdir hides DT_UNKNOWN by falling back to lstat). Any DT_UNKNOWN entry
 * means the fs does not fill d_type (xfs with ftype=0, ext4 without `filetype`); overlayfs then
 * cannot tell whiteouts from files (moby#22937).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromNodeError } from '../errors.js';
import { DT_UNKNOWN, readdirTypes } from '../sys/libc.js';

export interface DTypeResult {
  supported: boolean;
  reason?: string;
}

export async function probeDType(dir: string): Promise<DTypeResult> {
  let td: string;
  try {
    td = await mkdtemp(join(dir, 'd-type-check-'));
  } catch (e) {
    throw fromNodeError(e, 'mkdtemp', { path: dir });
  }
  try {
    await writeFile(join(td, 'fsutils-dummy'), '');
    const entries = readdirTypes(td);
    if (entries.length === 0) return { supported: false, reason: 'getdents64 returned no entries' };
    const unknown = entries.filter((e) => e.type === DT_UNKNOWN);
    if (unknown.length > 0) return { supported: false, reason: `getdents64 reports DT_UNKNOWN for ${unknown.map((e) => e.name).join(', ')}` };
    return { supported: true };
  } finally {
    await rm(td, { recursive: true, force: true });
  }
}

/** Docker's ErrDTypeNotSupported text for a backing fs name. */
export function dTypeNotSupportedMessage(driver: string, backingFs: string): string {
  let msg = `${driver}: the backing ${backingFs} filesystem is formatted without d_type support, which leads to incorrect behavior.`;
  if (backingFs === 'xfs') msg += ' Reformat the filesystem with ftype=1 to enable d_type support.';
  if (backingFs === 'extfs') msg += ' Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support.';
  msg += ' Backing filesystems without d_type support are not supported.';
  return msg;
}
