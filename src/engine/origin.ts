/**
 * The kernel's `overlay.origin` value: a `struct ovl_fb` wrapping the lower object's NFS file handle
 * (version 0, magic 0xfb, total length, flags (0 = little-endian CPU), handle type, 16-byte fs UUID,
 * fid).
 * The kernel stores it on copy-up of a dir or of a file with nlink 1 when the lower fs can encode
 * handles (observed on this machine's ext4 with a null UUID). name_to_handle_at and the
 * FS_IOC_GETFSUUID ioctl come from src/sys.
 */
import { openSync, closeSync, constants as fsc } from 'node:fs';
import { fsUuidOf, nameToHandle } from '../sys/libc.js';

const uuidCache = new Map<string, Buffer>();

/** The filesystem UUID (s_uuid) of the fs holding `layerRoot`, zeros when the fs will not say. */
function fsUuid(layerRoot: string): Buffer {
  const hit = uuidCache.get(layerRoot);
  if (hit) return hit;
  let out: Buffer = Buffer.alloc(16);
  let fd = -1;
  try {
    fd = openSync(layerRoot, fsc.O_RDONLY | fsc.O_DIRECTORY);
    out = fsUuidOf(fd) ?? out;
  } catch (e) {
    // Deliberate: an fs without the ioctl (or an unreadable root) keeps the null UUID.
    void e;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  uuidCache.set(layerRoot, out);
  return out;
}

/** Encode `overlay.origin` for `realPath` in the layer rooted at `layerRoot`; null if the fs has no handles. */
export function encodeOrigin(realPath: string, layerRoot: string): Buffer | null {
  const handle = nameToHandle(realPath);
  if (handle === null) return null;
  const uuid = fsUuid(layerRoot);
  const len = 21 + handle.bytes.length;
  const fb = Buffer.alloc(len);
  fb[0] = 0;
  fb[1] = 0xfb;
  fb[2] = len;
  fb[3] = 0; // OVL_FH_FLAG_CPU_ENDIAN: 0 on little-endian (observed: kernel writes 0 here)
  fb[4] = handle.type & 0xff;
  uuid.copy(fb, 5);
  handle.bytes.copy(fb, 21);
  return fb;
}
