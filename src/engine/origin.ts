/**
 * The kernel's `overlay.origin` value: a `struct ovl_fb` wrapping the lower object's NFS file handle
 * (version 0, magic 0xfb, total length, flags (0 = little-endian CPU), handle type, 16-byte fs UUID,
 * fid).
 * The kernel stores it on copy-up of a dir or of a file with nlink 1 when the lower fs can encode
 * handles (observed on this machine's ext4 with a null UUID). name_to_handle_at and the
 * FS_IOC_GETFSUUID ioctl are bound here because src/sys has no wrapper for them yet.
 */
import koffi from 'koffi';
import { openSync, closeSync, constants as fsc } from 'node:fs';

const lib = koffi.load('libc.so.6');
const nameToHandleAt = lib.func('int name_to_handle_at(int dirfd, const char *path, void *handle, _Out_ int *mountId, int flags)');
const ioctlPtr = lib.func('int ioctl(int fd, unsigned long request, void *arg)');

const AT_FDCWD = -100;
const MAX_HANDLE_SZ = 128;
// _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; })
const FS_IOC_GETFSUUID = 0x80111500;

const uuidCache = new Map<string, Buffer>();

/** The filesystem UUID (s_uuid) of the fs holding `layerRoot`, zeros when the fs will not say. */
function fsUuid(layerRoot: string): Buffer {
  const hit = uuidCache.get(layerRoot);
  if (hit) return hit;
  let out = Buffer.alloc(16);
  let fd = -1;
  try {
    fd = openSync(layerRoot, fsc.O_RDONLY | fsc.O_DIRECTORY);
    const arg = Buffer.alloc(17);
    arg[0] = 16;
    if (ioctlPtr(fd, FS_IOC_GETFSUUID, arg) === 0 && arg[0] === 16) out = Buffer.from(arg.subarray(1, 17));
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
  const h = Buffer.alloc(8 + MAX_HANDLE_SZ);
  h.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mountId = [0];
  if (nameToHandleAt(AT_FDCWD, realPath, h, mountId, 0) !== 0) return null;
  const bytes = h.readUInt32LE(0);
  const type = h.readInt32LE(4);
  const uuid = fsUuid(layerRoot);
  const len = 21 + bytes;
  const fb = Buffer.alloc(len);
  fb[0] = 0;
  fb[1] = 0xfb;
  fb[2] = len;
  fb[3] = 0; // OVL_FH_FLAG_CPU_ENDIAN: 0 on little-endian (observed: kernel writes 0 here)
  fb[4] = type & 0xff;
  uuid.copy(fb, 5);
  h.copy(fb, 21, 8, 8 + bytes);
  return fb;
}
