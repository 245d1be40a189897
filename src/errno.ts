/** Linux errno numbers (x86_64/arm64 generic), and the reverse map. */
export const constants: Record<string, number> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33,
  ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40,
  ENODATA: 61, EOVERFLOW: 75, EUCLEAN: 117, EOPNOTSUPP: 95, ENOTSUP: 95, ESTALE: 116, EDQUOT: 122,
};

const byNumber = new Map<number, string>();
for (const [name, num] of Object.entries(constants)) {
  if (!byNumber.has(num)) byNumber.set(num, name);
}

/** errno number → code name ("EIO" for unknown numbers, with the number kept in the name). */
export function errnoName(n: number): string {
  return byNumber.get(n) ?? `E${n}`;
}

export interface ErrnoException extends Error {
  errno?: number | undefined;
  code?: string | undefined;
  path?: string | undefined;
  syscall?: string | undefined;
}
