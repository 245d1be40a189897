/** The Stats-like object the engine returns: bigint nanosecond times, like `lstat(p, {bigint:true})`. */
import type { BigIntStats } from 'node:fs';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../sys/libc.js';

export class OverlayStats {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: number;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;

  constructor(st: BigIntStats, dev: bigint, nlink?: number) {
    this.dev = dev;
    this.ino = st.ino;
    this.mode = Number(st.mode);
    this.nlink = nlink ?? Number(st.nlink);
    this.uid = Number(st.uid);
    this.gid = Number(st.gid);
    this.rdev = st.rdev;
    this.size = st.size;
    this.blksize = Number(st.blksize);
    this.blocks = st.blocks;
    this.atimeNs = st.atimeNs;
    this.mtimeNs = st.mtimeNs;
    this.ctimeNs = st.ctimeNs;
    this.birthtimeNs = st.birthtimeNs;
  }

  get atime(): Date { return new Date(Number(this.atimeNs / 1_000_000n)); }
  get mtime(): Date { return new Date(Number(this.mtimeNs / 1_000_000n)); }
  get ctime(): Date { return new Date(Number(this.ctimeNs / 1_000_000n)); }
  isFile(): boolean { return (this.mode & S_IFMT) === S_IFREG; }
  isDirectory(): boolean { return (this.mode & S_IFMT) === S_IFDIR; }
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === S_IFLNK; }
  isFIFO(): boolean { return (this.mode & S_IFMT) === S_IFIFO; }
  isCharacterDevice(): boolean { return (this.mode & S_IFMT) === S_IFCHR; }
  isBlockDevice(): boolean { return (this.mode & S_IFMT) === S_IFBLK; }
  isSocket(): boolean { return (this.mode & S_IFMT) === S_IFSOCK; }
}

/** A directory entry as `readdir(p, {withFileTypes: true})` gives it. */
export class OverlayDirent {
  constructor(readonly name: string, readonly parentPath: string, private readonly fmt: number) {}
  isFile(): boolean { return this.fmt === S_IFREG; }
  isDirectory(): boolean { return this.fmt === S_IFDIR; }
  isSymbolicLink(): boolean { return this.fmt === S_IFLNK; }
  isFIFO(): boolean { return this.fmt === S_IFIFO; }
  isCharacterDevice(): boolean { return this.fmt === S_IFCHR; }
  isBlockDevice(): boolean { return this.fmt === S_IFBLK; }
  isSocket(): boolean { return this.fmt === S_IFSOCK; }
}

const DT_TO_FMT: Record<number, number> = { 1: S_IFIFO, 2: S_IFCHR, 4: S_IFDIR, 6: S_IFBLK, 8: S_IFREG, 10: S_IFLNK, 12: S_IFSOCK };
export function fmtFromDtype(t: number): number {
  return DT_TO_FMT[t] ?? 0;
}
