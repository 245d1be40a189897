/** A comparable listing of a directory tree (type, mode, owner, size, content hash, link, caps). */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr } from '../../src/sys/libc.js';

export interface ListingOptions {
  /** Include non-directory mtimes (whole seconds). Default true. */
  mtimes?: boolean;
}

export function treeListing(root: string, opts: ListingOptions = {}): string[] {
  const out: string[] = [];
  const visit = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const path = `${rel}/${name}`;
      const st = lstatSync(abs, { bigint: true });
      const mode = Number(st.mode);
      const fmt = mode & 0o170000;
      let extra = '';
      if (fmt === 0o100000) extra = createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16);
      else if (fmt === 0o120000) extra = `-> ${readlinkSync(abs)}`;
      else if (fmt === 0o020000 || fmt === 0o060000) extra = `dev=${st.rdev}`;
      const cap = lgetxattr(abs, 'security.capability');
      const time = fmt !== 0o040000 && opts.mtimes !== false ? ` t=${st.mtimeNs / 1_000_000_000n}` : '';
      out.push(`${path} ${mode.toString(8)} ${st.uid}:${st.gid} ${fmt === 0o040000 ? '' : st.size}${time} ${extra}${cap ? ` cap=${cap.toString('hex')}` : ''}`);
      if (fmt === 0o040000) visit(abs, path);
    }
  };
  visit(root, '');
  return out;
}
