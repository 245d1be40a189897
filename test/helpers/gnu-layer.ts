/**
 * TEMPORARY test helper until the real applier lands: turn a layer tar into an overlay layer dir
 * with GNU tar, then convert `.wh.` entries to the kernel form (0/0 char device, opaque xattr),
 * keeping each whiteout's owner and mtime and — like the kernel — sharing one inode between
 * whiteouts whose tar entry names a link target. Parent dir mtimes are restored afterwards.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, link, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import tarStream from 'tar-stream';
import { lchown } from 'node:fs/promises';
import { lsetxattr, lutimesNs, mknod, S_IFCHR, timespecFromNs } from '../../src/sys/libc.js';

export interface TarEntryInfo {
  name: string;
  type: string;
  linkname: string;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
}

/** Every header of a tar (tar-stream), bodies skipped. */
export async function tarEntries(tarPath: string): Promise<TarEntryInfo[]> {
  const out: TarEntryInfo[] = [];
  const ex = tarStream.extract();
  ex.on('entry', (h, stream, next) => {
    out.push({
      name: h.name, type: h.type ?? 'file', linkname: h.linkname ?? '', uid: h.uid ?? 0, gid: h.gid ?? 0,
      uname: h.uname ?? '', gname: h.gname ?? '',
    });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((res, rej) => { ex.on('finish', res); ex.on('error', rej); });
  createReadStream(tarPath).pipe(ex);
  await done;
  return out;
}

/** Extract `tarPath` into `dest` (existing, empty) and convert whiteouts to the overlay form. */
export async function gnuLayerDir(tarPath: string, dest: string, opts: { userxattr?: boolean } = {}): Promise<void> {
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarPath, '-C', dest]);
  for (const e of await tarEntries(tarPath)) {
    const rel = e.name.replace(/^\.?\/+/, '').replace(/\/$/, '');
    const base = basename(rel);
    if (!base.startsWith('.wh.')) continue;
    const abs = join(dest, rel);
    const parent = dirname(abs);
    const parentTimes = await lstat(parent, { bigint: true });
    const st = await lstat(abs, { bigint: true });
    await rm(abs);
    if (base === '.wh..wh..opq') {
      lsetxattr(parent, `${opts.userxattr === true ? 'user' : 'trusted'}.overlay.opaque`, 'y');
    } else {
      const target = join(parent, base.slice(4));
      const shared = e.linkname === '' ? null : join(dest, e.linkname);
      if (shared !== null) {
        await link(shared, target);
      } else {
        mknod(target, S_IFCHR, 0, 0);
        await lchown(target, Number(st.uid), Number(st.gid));
        lutimesNs(target, null, timespecFromNs(st.mtimeNs));
      }
    }
    lutimesNs(parent, timespecFromNs(parentTimes.atimeNs), timespecFromNs(parentTimes.mtimeNs));
  }
}
