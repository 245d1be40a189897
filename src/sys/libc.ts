/**
 * Typed wrappers for the syscalls Node lacks, through koffi against libc. Each call is synchronous
 * (a syscall costs microseconds; the layer-apply hot path runs these in worker threads) and either
 * returns a value or throws OverlayError with the POSIX code, the operation and the path.
 * koffi loads per thread, so this module works inside worker_threads too.
 */
import koffi from 'koffi';
import { OverlayError } from '../errors.js';
import { errnoName } from '../errno.js';

const lib = koffi.load('libc.so.6');

const c = {
  mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: lib.func('int umount2(const char *target, int flags)'),
  mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
  lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
  lgetxattr: lib.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
  llistxattr: lib.func('intptr_t llistxattr(const char *path, void *list, size_t size)'),
  lremovexattr: lib.func('int lremovexattr(const char *path, const char *name)'),
  fsetxattr: lib.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)'),
  fgetxattr: lib.func('intptr_t fgetxattr(int fd, const char *name, void *value, size_t size)'),
  flistxattr: lib.func('intptr_t flistxattr(int fd, void *list, size_t size)'),
  utimensat: lib.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
  futimens: lib.func('int futimens(int fd, const void *times)'),
  renameat2: lib.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)'),
  copy_file_range: lib.func('int64_t copy_file_range(int fd_in, void *off_in, int fd_out, void *off_out, size_t len, unsigned int flags)'),
  ioctl_int: lib.func('int ioctl(int fd, unsigned long request, ...)'),
  syscall: lib.func('long syscall(long number, ...)'),
  unshare: lib.func('int unshare(int flags)'),
  flock: lib.func('int flock(int fd, int operation)'),
  name_to_handle_at: lib.func('int name_to_handle_at(int dirfd, const char *path, void *handle, _Out_ int *mountId, int flags)'),
  ioctl_ptr: lib.func('int ioctl(int fd, unsigned long request, void *arg)'),
  lseek: lib.func('int64_t lseek(int fd, int64_t offset, int whence)'),
  getpagesize: lib.func('int getpagesize()'),
  open: lib.func('int open(const char *path, int flags, ...)'),
  close: lib.func('int close(int fd)'),
};

/**
 * A path argument: a string (passed as UTF-8) or raw bytes, for names that are not UTF-8 (a Linux
 * name is bytes). koffi passes a Buffer as the pointer to its bytes, so it gets a NUL terminator.
 */
export type CPath = string | Buffer;

function cpath(p: CPath): string | Buffer {
  return typeof p === 'string' ? p : Buffer.concat([p, Buffer.alloc(1)]);
}

/** A CPath as text for messages. */
export function pathText(p: CPath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

function throwErrno(op: string, path?: CPath, dest?: string): never {
  const code = errnoName(koffi.errno());
  throw new OverlayError(code, op, { path: path === undefined ? undefined : pathText(path), dest });
}

// ---- mount(2) ---------------------------------------------------------------------------------

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  if (c.mount(source, target, fstype, flags, data) !== 0) throwErrno('mount', target);
}

export function umount2(target: string, flags = 0): void {
  if (c.umount2(target, flags) !== 0) throwErrno('umount2', target);
}

export function pageSize(): number {
  return c.getpagesize() as number;
}

// ---- new mount API (fsopen/fsconfig/fsmount/move_mount), used for lowerdir+ ----------------------

const NR: Record<string, { fsopen: number; fsconfig: number; fsmount: number; move_mount: number; getdents64: number }> = {
  x64: { fsopen: 430, fsconfig: 431, fsmount: 432, move_mount: 429, getdents64: 217 },
  arm64: { fsopen: 430, fsconfig: 431, fsmount: 432, move_mount: 429, getdents64: 61 },
};
const nr = NR[process.arch];

const FSOPEN_CLOEXEC = 1;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const FSMOUNT_CLOEXEC = 1;
const MOVE_MOUNT_F_EMPTY_PATH = 4;
const AT_FDCWD = -100;

/**
 * Mount a filesystem with the new mount API: each option is its own fsconfig call, so there is
 * no page-size limit on the total (overlay's `lowerdir+` takes one lower per call, kernel ≥ 6.8).
 * `options` are [key, value] pairs; a null value sets a flag option.
 */
export function fsMount(fstype: string, target: string, options: ReadonlyArray<readonly [string, string | null]>, attrFlags = 0): void {
  if (!nr) throw new OverlayError('ENOSYS', 'fsopen', { path: target, reason: `unsupported arch ${process.arch}` });
  const fsfd = Number(c.syscall(nr.fsopen, 'str', fstype, 'uint', FSOPEN_CLOEXEC));
  if (fsfd < 0) throwErrno('fsopen', target);
  try {
    for (const [key, value] of options) {
      const r =
        value === null
          ? Number(c.syscall(nr.fsconfig, 'int', fsfd, 'uint', FSCONFIG_SET_FLAG, 'str', key, 'void *', null, 'int', 0))
          : Number(c.syscall(nr.fsconfig, 'int', fsfd, 'uint', FSCONFIG_SET_STRING, 'str', key, 'str', value, 'int', 0));
      if (r < 0) throwErrno(`fsconfig ${key}`, value ?? target);
    }
    if (Number(c.syscall(nr.fsconfig, 'int', fsfd, 'uint', FSCONFIG_CMD_CREATE, 'void *', null, 'void *', null, 'int', 0)) < 0) {
      throwErrno('fsconfig create', target);
    }
    const mfd = Number(c.syscall(nr.fsmount, 'int', fsfd, 'uint', FSMOUNT_CLOEXEC, 'uint', attrFlags));
    if (mfd < 0) throwErrno('fsmount', target);
    try {
      const r = Number(c.syscall(nr.move_mount, 'int', mfd, 'str', '', 'int', AT_FDCWD, 'str', target, 'uint', MOVE_MOUNT_F_EMPTY_PATH));
      if (r < 0) throwErrno('move_mount', target);
    } finally {
      c.close(mfd);
    }
  } finally {
    c.close(fsfd);
  }
}

// ---- device nodes ------------------------------------------------------------------------------

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** glibc's makedev encoding. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}
export function major(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}
export function minor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

/** mknod(2): `mode` includes the type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: CPath, mode: number, devMajor = 0, devMinor = 0): void {
  if (c.mknod(cpath(path), mode, makedev(devMajor, devMinor)) !== 0) throwErrno('mknod', path);
}

// ---- xattrs -----------------------------------------------------------------------------------

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export function lsetxattr(path: CPath, name: string, value: Uint8Array | string, flags = 0): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  if (c.lsetxattr(cpath(path), name, buf, buf.length, flags) !== 0) throwErrno(`lsetxattr ${name}`, path);
}

export function fsetxattr(fd: number, name: string, value: Uint8Array | string, flags = 0, pathForErrors?: CPath): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  if (c.fsetxattr(fd, name, buf, buf.length, flags) !== 0) throwErrno(`fsetxattr ${name}`, pathForErrors);
}

function readSized(op: string, path: string | undefined, call: (buf: Buffer | null, size: number) => number): Buffer {
  for (let attempt = 0; attempt < 4; attempt++) {
    const need = call(null, 0);
    if (need < 0) throwErrno(op, path);
    if (need === 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(need);
    const got = call(buf, need);
    if (got >= 0) return buf.subarray(0, got);
    if (errnoName(koffi.errno()) !== 'ERANGE') throwErrno(op, path);
  }
  throw new OverlayError('ERANGE', op, { path });
}

/** lgetxattr; returns null when the attribute is absent (ENODATA). */
export function lgetxattr(path: CPath, name: string): Buffer | null {
  const p = cpath(path);
  try {
    return readSized(`lgetxattr ${name}`, pathText(path), (b, n) => Number(c.lgetxattr(p, name, b, n)));
  } catch (e) {
    if (e instanceof OverlayError && (e.code === 'ENODATA' || e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) return null;
    throw e;
  }
}

export function fgetxattr(fd: number, name: string): Buffer | null {
  try {
    return readSized(`fgetxattr ${name}`, undefined, (b, n) => Number(c.fgetxattr(fd, name, b, n)));
  } catch (e) {
    if (e instanceof OverlayError && (e.code === 'ENODATA' || e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) return null;
    throw e;
  }
}

function splitNames(buf: Buffer): string[] {
  return buf.length === 0 ? [] : buf.toString('utf8').split('\0').filter((s) => s.length > 0);
}

export function llistxattr(path: CPath): string[] {
  const p = cpath(path);
  try {
    return splitNames(readSized('llistxattr', pathText(path), (b, n) => Number(c.llistxattr(p, b, n))));
  } catch (e) {
    if (e instanceof OverlayError && (e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) return [];
    throw e;
  }
}

export function flistxattr(fd: number): string[] {
  try {
    return splitNames(readSized('flistxattr', undefined, (b, n) => Number(c.flistxattr(fd, b, n))));
  } catch (e) {
    if (e instanceof OverlayError && (e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) return [];
    throw e;
  }
}

export function lremovexattr(path: string, name: string): void {
  if (c.lremovexattr(path, name) !== 0) throwErrno(`lremovexattr ${name}`, path);
}

// ---- times with nanosecond precision -----------------------------------------------------------

const AT_SYMLINK_NOFOLLOW = 0x100;
export const UTIME_OMIT = (1n << 30n) - 2n;
export const UTIME_NOW = (1n << 30n) - 1n;

/** A time as whole seconds plus nanoseconds (seconds may be negative). */
export interface Timespec {
  sec: bigint;
  nsec: number;
}

export function timespecFromNs(ns: bigint): Timespec {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return { sec, nsec: Number(nsec) };
}

function timesBuf(atime: Timespec | null, mtime: Timespec | null): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(atime ? atime.sec : 0n, 0);
  b.writeBigInt64LE(atime ? BigInt(atime.nsec) : UTIME_OMIT, 8);
  b.writeBigInt64LE(mtime ? mtime.sec : 0n, 16);
  b.writeBigInt64LE(mtime ? BigInt(mtime.nsec) : UTIME_OMIT, 24);
  return b;
}

/** utimensat without following symlinks; null leaves that time unchanged. */
export function lutimesNs(path: CPath, atime: Timespec | null, mtime: Timespec | null): void {
  if (c.utimensat(AT_FDCWD, cpath(path), timesBuf(atime, mtime), AT_SYMLINK_NOFOLLOW) !== 0) throwErrno('utimensat', path);
}

export function futimesNs(fd: number, atime: Timespec | null, mtime: Timespec | null, pathForErrors?: CPath): void {
  if (c.futimens(fd, timesBuf(atime, mtime)) !== 0) throwErrno('futimens', pathForErrors);
}

// ---- rename ------------------------------------------------------------------------------------

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

export function renameat2(oldPath: string, newPath: string, flags: number): void {
  if (c.renameat2(AT_FDCWD, oldPath, AT_FDCWD, newPath, flags) !== 0) throwErrno('renameat2', oldPath, newPath);
}

// ---- data copies -------------------------------------------------------------------------------

const FICLONE = 0x40049409;

/** Reflink the whole of srcFd into dstFd; false when the filesystem cannot (EOPNOTSUPP/EXDEV/EINVAL). */
export function ficlone(dstFd: number, srcFd: number): boolean {
  if (c.ioctl_int(dstFd, FICLONE, 'int', srcFd) === 0) return true;
  const code = errnoName(koffi.errno());
  if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EINVAL' || code === 'ENOTTY' || code === 'EBADF') return false;
  throwErrno('ioctl FICLONE');
}

/** copy_file_range from the current offsets; returns bytes copied (0 at EOF). */
export function copyFileRange(fdIn: number, fdOut: number, len: number): number {
  const r = Number(c.copy_file_range(fdIn, null, fdOut, null, len, 0));
  if (r < 0) throwErrno('copy_file_range');
  return r;
}

// ---- directory entries with d_type (Node hides DT_UNKNOWN) -------------------------------------

export const DT_UNKNOWN = 0;

/** Raw getdents64 over a directory: names with their d_type as the filesystem reports it. */
export function readdirTypes(dir: string): Array<{ name: string; type: number }> {
  if (!nr) throw new OverlayError('ENOSYS', 'getdents64', { path: dir });
  const O_RDONLY = 0;
  const O_DIRECTORY = 0o200000;
  const O_CLOEXEC = 0o2000000;
  const fd = c.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 'int', 0) as number;
  if (fd < 0) throwErrno('open', dir);
  const out: Array<{ name: string; type: number }> = [];
  try {
    const buf = Buffer.alloc(32768);
    for (;;) {
      const n = Number(c.syscall(nr.getdents64, 'int', fd, 'void *', buf, 'uint', buf.length));
      if (n < 0) throwErrno('getdents64', dir);
      if (n === 0) break;
      let off = 0;
      while (off < n) {
        const reclen = buf.readUInt16LE(off + 16);
        const type = buf.readUInt8(off + 18);
        const end = buf.indexOf(0, off + 19);
        const name = buf.toString('utf8', off + 19, end);
        if (name !== '.' && name !== '..') out.push({ name, type });
        off += reclen;
      }
    }
  } finally {
    c.close(fd);
  }
  return out;
}

// ---- namespaces --------------------------------------------------------------------------------

export const CLONE_FS = 0x200;
export const CLONE_NEWNS = 0x20000;

export function unshare(flags: number): void {
  if (c.unshare(flags) !== 0) throwErrno('unshare');
}

// ---- advisory locks ----------------------------------------------------------------------------

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** flock(2) without blocking the thread: true when taken, false when another holder has it. */
export function tryFlock(fd: number, exclusive: boolean, pathForErrors?: string): boolean {
  if (c.flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
  const code = errnoName(koffi.errno());
  if (code === 'EAGAIN') return false;
  throwErrno('flock', pathForErrors);
}

export function funlock(fd: number): void {
  c.flock(fd, LOCK_UN);
}

// ---- file handles, fs UUID, sparse seeks (for the engine's origin xattr and copy-up) -----------

const MAX_HANDLE_SZ = 128;

/** name_to_handle_at: the NFS file handle of `path` as {type, bytes}; null when the fs has none. */
export function nameToHandle(path: string): { type: number; bytes: Buffer } | null {
  const h = Buffer.alloc(8 + MAX_HANDLE_SZ);
  h.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mountId = [0];
  if (c.name_to_handle_at(AT_FDCWD, path, h, mountId, 0) !== 0) return null;
  const len = h.readUInt32LE(0);
  return { type: h.readInt32LE(4), bytes: Buffer.from(h.subarray(8, 8 + len)) };
}

// _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; })
const FS_IOC_GETFSUUID = 0x80111500;

/** The filesystem UUID (s_uuid) of the fs holding the open `fd`; null when the fs will not say. */
export function fsUuidOf(fd: number): Buffer | null {
  const arg = Buffer.alloc(17);
  arg[0] = 16;
  if (c.ioctl_ptr(fd, FS_IOC_GETFSUUID, arg) === 0 && arg[0] === 16) return Buffer.from(arg.subarray(1, 17));
  return null;
}

export const SEEK_SET = 0;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** lseek; null for ENXIO (no data at or after `offset` with SEEK_DATA). */
export function lseek(fd: number, offset: number, whence: number): number | null {
  const r = Number(c.lseek(fd, offset, whence));
  if (r >= 0) return r;
  if (errnoName(koffi.errno()) === 'ENXIO') return null;
  throwErrno('lseek');
}
