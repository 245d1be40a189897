/**
 * Sparse-aware data copy for copy-up, like the kernel's: holes stay holes (case B30). FICLONE is
 * tried first by the caller.
 */
import { ftruncateSync } from 'node:fs';
import { copyFileRange, lseek, SEEK_DATA, SEEK_SET } from '../sys/libc.js';

/** lseek; null when there is no data at or after `off` (ENXIO). */
const seek = lseek;

const CHUNK = 1 << 20;

/**
 * Copy `size` bytes of inFd to outFd (outFd empty), the kernel's way (ovl_copy_up_file): 1 MiB
 * chunks; before a chunk, SEEK_DATA from the current position and skip the hole if data starts
 * later; a chunk with data is copied whole. Then the size is set, so trailing holes stay too.
 * Same algorithm, same allocation as a kernel copy-up of the same file.
 */
export function copySparse(inFd: number, outFd: number, size: number): void {
  let pos = 0;
  let dataPos = 0;
  let skipHole = true;
  let len = size;
  while (len > 0) {
    const thisLen = Math.min(len, CHUNK);
    if (skipHole && dataPos < pos) {
      let d: number | null;
      try {
        d = seek(inFd, pos, SEEK_DATA);
      } catch (e) {
        void e; // a lower fs without SEEK_DATA: copy everything, like the kernel
        d = pos;
        skipHole = false;
      }
      if (d === null) break;
      dataPos = d;
      if (d > pos) {
        len -= d - pos;
        pos = d;
        continue;
      }
    }
    seek(inFd, pos, SEEK_SET);
    seek(outFd, pos, SEEK_SET);
    let left = thisLen;
    while (left > 0) {
      const n = copyFileRange(inFd, outFd, left);
      if (n === 0) break;
      left -= n;
    }
    const copied = thisLen - left;
    if (copied === 0) break;
    pos += copied;
    len -= copied;
  }
  ftruncateSync(outFd, size);
}
