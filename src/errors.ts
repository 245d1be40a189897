/**
 * The one error type of the project. It carries a POSIX code (so a kernel EXDEV and an engine
 * EXDEV compare the same), the operation and the path, plus an optional domain `reason` slug.
 * The message has Node's/libuv's shape: `ENOENT: no such file or directory, lstat '/x'`.
 */
import { constants, type ErrnoException } from './errno.js';

export { constants };

const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EIO: 'i/o error',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'not enough memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'resource busy or locked',
  EEXIST: 'file already exists',
  EXDEV: 'cross-device link not permitted',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  ENFILE: 'file table overflow',
  EMFILE: 'too many open files',
  ENOTTY: 'inappropriate ioctl for device',
  EFBIG: 'file too large',
  ENOSPC: 'no space left on device',
  ESPIPE: 'invalid seek',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  EPIPE: 'broken pipe',
  ERANGE: 'result too large',
  ENAMETOOLONG: 'name too long',
  ENOSYS: 'function not implemented',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many symbolic links encountered',
  ENODATA: 'no data available',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  EDQUOT: 'disk quota exceeded',
  EOVERFLOW: 'value too large for defined data type',
  ESTALE: 'stale file handle',
  EUCLEAN: 'structure needs cleaning',
  ETXTBSY: 'text file is busy',
  EDEADLK: 'resource deadlock avoided',
};

export interface OverlayErrorInit {
  path?: string | undefined;
  dest?: string | undefined;
  layer?: string | undefined;
  reason?: string | undefined;
  cause?: unknown;
  /** Free-form detail appended to the message (e.g. Docker's exact wording). */
  detail?: string | undefined;
}

export class OverlayError extends Error implements ErrnoException {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly op: string;
  readonly path?: string;
  readonly dest?: string;
  readonly layer?: string;
  readonly reason?: string;

  constructor(code: string, op: string, init: OverlayErrorInit = {}) {
    const desc = DESCRIPTIONS[code] ?? 'error';
    let msg = `${code}: ${desc}, ${op}`;
    if (init.path !== undefined) msg += ` '${init.path}'`;
    if (init.dest !== undefined) msg += ` -> '${init.dest}'`;
    if (init.layer !== undefined) msg += ` [layer ${init.layer}]`;
    if (init.reason !== undefined) msg += ` (${init.reason})`;
    if (init.detail !== undefined) msg += `: ${init.detail}`;
    super(msg, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'OverlayError';
    this.code = code;
    this.errno = -(constants[code] ?? 0);
    this.op = op;
    this.syscall = op;
    if (init.path !== undefined) this.path = init.path;
    if (init.dest !== undefined) this.dest = init.dest;
    if (init.layer !== undefined) this.layer = init.layer;
    if (init.reason !== undefined) this.reason = init.reason;
  }
}

/** Shorthand for throwing. */
export function fail(code: string, op: string, init: OverlayErrorInit = {}): never {
  throw new OverlayError(code, op, init);
}

/** The POSIX code of any error (Node's, ours), or undefined. */
export function codeOf(e: unknown): string | undefined {
  if (e !== null && typeof e === 'object' && 'code' in e) {
    const c = (e as { code: unknown }).code;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/** The path a Node error names (`open '/x'`), or undefined. */
export function pathOf(e: unknown): string | undefined {
  if (e !== null && typeof e === 'object' && 'path' in e) {
    const p = (e as { path: unknown }).path;
    if (typeof p === 'string') return p;
  }
  return undefined;
}

export const hasCode = (e: unknown, ...codes: string[]): boolean => {
  const c = codeOf(e);
  return c !== undefined && codes.includes(c);
};
export const isNotFound = (e: unknown): boolean => hasCode(e, 'ENOENT');
export const isExists = (e: unknown): boolean => hasCode(e, 'EEXIST');

/**
 * Wrap a Node error (or anything) into OverlayError with context, once, at a module boundary.
 * An OverlayError passes through unchanged.
 */
export function fromNodeError(e: unknown, op: string, init: OverlayErrorInit = {}): OverlayError {
  if (e instanceof OverlayError) return e;
  const code = codeOf(e) ?? 'EIO';
  const path = init.path ?? (e as { path?: string } | null)?.path;
  return new OverlayError(code, op, { ...init, path, cause: e });
}
