/**
 * `overlay2 fs NAME OP …`: read and change a container's filesystem through the userspace engine,
 * with no mount and no root — like `docker cp`, but complete. New files get the modes a shell with
 * umask 022 would give them (0644 files, 0755 dirs), so a script replayed here matches the same
 * script run in the container.
 */
import { lstat, mkdir, readdir, readlink, symlink, chmod, lchown, link, open, stat } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { Command } from 'commander';
import type { OverlayEngine, OverlayStats } from '../engine/index.js';
import { OverlayError, fromNodeError, hasCode } from '../errors.js';
import { containerEngine, isContainerMounted } from '../image/index.js';
import { S_IFBLK, S_IFCHR, lgetxattr, llistxattr, lsetxattr, lutimesNs, major, minor, mknod, timespecFromNs } from '../sys/libc.js';
import type { CliContext } from './main.js';
import { decodeXattrValue, encodeXattrValue } from './xattr-value.js';
import { applyChmodMode } from './chmod-mode.js';

type Print = (human: string, value: unknown) => void;

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

function parseMode(s: string): number {
  if (!/^0?[0-7]{1,4}$/.test(s)) throw new OverlayError('EINVAL', 'parse mode', { reason: 'bad-mode', detail: `invalid octal mode '${s}'` });
  return parseInt(s, 8);
}

function parseOwner(s: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(s);
  if (!m) throw new OverlayError('EINVAL', 'parse owner', { reason: 'bad-owner', detail: `owner must be UID[:GID] (numeric), got '${s}'` });
  const uid = Number(m[1]);
  const gid = m[2] !== undefined ? Number(m[2]) : uid;
  // (uid_t)-1 means "unchanged" to chown(2); anything above it does not fit.
  if (uid >= 0xffffffff || gid >= 0xffffffff) throw new OverlayError('EINVAL', 'parse owner', { reason: 'bad-owner', detail: `owner out of range: '${s}'` });
  return { uid, gid };
}

/** A non-negative integer argument (decimal digits only: no signs, hex, exponents or fractions). */
function parseCount(s: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(s) || Number(s) > max) throw new OverlayError('EINVAL', `parse ${what}`, { reason: `bad-${what}`, detail: `${what} must be a non-negative integer, got '${s}'` });
  return Number(s);
}

/** `rm -r /` empties the container: refused, as rm(1)'s --preserve-root does. */
function refuseRoot(path: string, op: string): void {
  if (posix.normalize('/' + path) === '/') throw new OverlayError('EINVAL', op, { path, reason: 'preserve-root', detail: "it is dangerous to operate recursively on '/'" });
}

function typeChar(st: OverlayStats): string {
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  return '-';
}

function modeString(st: OverlayStats): string {
  const m = Number(st.mode);
  const rwx = (bits: number, special: boolean, ch: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return typeChar(st) + rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's') + rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's') + rwx(m & 7, (m & 0o1000) !== 0, 't');
}

function statJson(path: string, st: OverlayStats, target?: string): Record<string, unknown> {
  const o: Record<string, unknown> = {
    path,
    type: typeChar(st),
    mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    nlink: Number(st.nlink),
    ino: String(st.ino),
    mtimeNs: String(st.mtimeNs),
  };
  if (st.isCharacterDevice() || st.isBlockDevice()) o['rdev'] = Number(st.rdev);
  if (target !== undefined) o['target'] = target;
  return o;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Copy a tree inside the engine, keeping type, mode, owner, times, xattrs and hard links (mv's copy fallback). */
async function copyWithin(fs: OverlayEngine, src: string, dst: string, links = new Map<string, string>()): Promise<void> {
  const st = await fs.lstat(src);
  if (st.isDirectory()) {
    await fs.mkdir(dst, { mode: Number(st.mode) & 0o7777 });
    for (const name of (await fs.readdir(src)).sort()) await copyWithin(fs, posix.join(src, name), posix.join(dst, name), links);
  } else if (st.isSymbolicLink()) {
    await fs.symlink(await fs.readlink(src), dst);
  } else if (Number(st.nlink) > 1 && !st.isDirectory() && links.has(String(st.ino))) {
    await fs.link(links.get(String(st.ino)) as string, dst);
    return;
  } else if (st.isFile()) {
    await fs.copyFile(src, dst, fsc.COPYFILE_EXCL);
  } else {
    await fs.mknod(dst, Number(st.mode), major(st.rdev), minor(st.rdev));
  }
  if (Number(st.nlink) > 1 && !st.isDirectory()) links.set(String(st.ino), dst);
  for (const name of await fs.listxattr(src, { noFollow: true })) {
    await fs.setxattr(dst, name, await fs.getxattr(src, name, { noFollow: true }), { noFollow: true });
  }
  await fs.lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await fs.chmod(dst, Number(st.mode) & 0o7777);
  await fs.lutimes(dst, st.atimeNs, st.mtimeNs);
}

/** Set xattrs on a copy; names outside `user.` the destination refuses (no privilege, no support) are skipped. */
async function copyXattrs(names: string[], get: (n: string) => Promise<Buffer> | Buffer, set: (n: string, v: Buffer) => Promise<void> | void): Promise<void> {
  for (const n of names) {
    try {
      await set(n, await get(n));
    } catch (e) {
      if (n.startsWith('user.') || !(hasCode(e, 'EPERM') || hasCode(e, 'EOPNOTSUPP') || hasCode(e, 'ENOTSUP'))) throw e;
    }
  }
}

/**
 * Host tree → engine, as `cp -a` does: type, data, mode, owner, times, xattrs and hard links
 * (names of one host inode become links of one file). File data moves inside the kernel.
 */
async function copyIn(fs: OverlayEngine, src: string, dst: string, links = new Map<string, string>()): Promise<void> {
  const st = await lstat(src, { bigint: true }).catch((e: unknown) => {
    throw fromNodeError(e, 'lstat', { path: src });
  });
  const key = `${st.dev}:${st.ino}`;
  const linked = !st.isDirectory() && st.nlink > 1n ? links.get(key) : undefined;
  if (linked !== undefined) return fs.link(linked, dst);
  const mode = Number(st.mode) & 0o7777;
  if (st.isDirectory()) {
    await fs.mkdir(dst, { mode }).catch((e: unknown) => {
      if (!hasCode(e, 'EEXIST')) throw e;
    });
    for (const name of (await readdir(src)).sort()) await copyIn(fs, join(src, name), posix.join(dst, name), links);
  } else if (st.isSymbolicLink()) {
    await fs.symlink(await readlink(src), dst);
  } else if (st.isFile()) {
    const from = await open(src, 'r').catch((e: unknown) => {
      throw fromNodeError(e, 'open', { path: src });
    });
    try {
      const to = await fs.open(dst, 'w', mode);
      try {
        await to.copyFrom(from.fd);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
    await fs.mknod(dst, Number(st.mode), major(st.rdev), minor(st.rdev));
  } else {
    throw new OverlayError('EINVAL', 'cp-in', { path: src, reason: 'unsupported-file-type', detail: 'sockets are not copied' });
  }
  if (!st.isDirectory() && st.nlink > 1n) links.set(key, dst);
  await copyXattrs(llistxattr(src), (n) => lgetxattr(src, n) ?? Buffer.alloc(0), (n, v) => fs.setxattr(dst, n, v, { noFollow: true }));
  await fs.lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await fs.chmod(dst, mode);
  await fs.lutimes(dst, st.atimeNs, st.mtimeNs);
}

/** Engine tree → host, like copyIn the other way (owner only when root, as cp -a). */
async function copyOut(fs: OverlayEngine, src: string, dst: string, links = new Map<string, string>()): Promise<void> {
  const st = await fs.lstat(src);
  const key = String(st.ino);
  const linked = !st.isDirectory() && Number(st.nlink) > 1 ? links.get(key) : undefined;
  if (linked !== undefined) {
    await link(linked, dst).catch((e: unknown) => {
      throw fromNodeError(e, 'link', { path: linked, dest: dst });
    });
    return;
  }
  const mode = Number(st.mode) & 0o7777;
  if (st.isDirectory()) {
    await mkdir(dst, { mode }).catch((e: unknown) => {
      if (!hasCode(e, 'EEXIST')) throw fromNodeError(e, 'mkdir', { path: dst });
    });
    for (const name of (await fs.readdir(src)).sort()) await copyOut(fs, posix.join(src, name), join(dst, name), links);
  } else if (st.isSymbolicLink()) {
    await symlink(await fs.readlink(src), dst);
  } else if (st.isFile()) {
    const from = await fs.open(src, 'r');
    try {
      const to = await open(dst, 'wx', mode).catch((e: unknown) => {
        throw fromNodeError(e, 'open', { path: dst });
      });
      try {
        await from.copyTo(to.fd);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
    mknod(dst, Number(st.mode), major(st.rdev), minor(st.rdev));
  } else {
    throw new OverlayError('EINVAL', 'cp-out', { path: src, reason: 'unsupported-file-type', detail: 'sockets are not copied' });
  }
  if (!st.isDirectory() && Number(st.nlink) > 1) links.set(key, dst);
  await copyXattrs(await fs.listxattr(src, { noFollow: true }), (n) => fs.getxattr(src, n, { noFollow: true }), (n, v) => lsetxattr(dst, n, v));
  if (process.getuid?.() === 0) await lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await chmod(dst, mode);
  lutimesNs(dst, timespecFromNs(st.atimeNs), timespecFromNs(st.mtimeNs));
}

/** mv(1)/ln(1): a destination that is a directory (or a symlink to one) means "into it, under the source's name". */
async function intoDir(fs: OverlayEngine, dst: string, src: string): Promise<string> {
  const isDir = await fs.stat(dst).then((st) => st.isDirectory(), () => false);
  return isDir ? posix.join(dst, posix.basename(src)) : dst;
}

/** The ops of `fs`, as a program of their own, bound to one container. */
function opsProgram(name: string, ctx: CliContext, print: Print): Command {
  const fsCmd = new Command('overlay2 fs ' + name)
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.output.out(s), writeErr: (s) => ctx.output.err(s), outputError: () => undefined });

  const withEngine = async <T>(container: string, fn: (fs: OverlayEngine) => Promise<T>, readonly = false): Promise<T> => {
    const store = await ctx.engineStore(readonly ? 'shared' : 'exclusive');
    // The kernel calls changing an upper dir under a live overlay mount undefined behaviour.
    if (!readonly && (await isContainerMounted(store, container))) {
      throw new OverlayError('EBUSY', 'fs', {
        reason: 'container-mounted',
        detail: `container ${container} is mounted by the kernel; writing its layer through the engine under a live mount is undefined behaviour: umount it first (or write through the mount)`,
      });
    }
    const fs = await containerEngine(store, container, { readonly });
    return fn(fs);
  };

  fsCmd
    .command('ls')
    .argument('[paths...]', 'directories or files (default /)')
    .option('-l', 'long listing')
    .action(async (paths: string[], o: { l?: boolean }) => {
      const targets = paths.length > 0 ? paths : ['/'];
      await withEngine(name, async (fs) => {
        const rows: Array<Record<string, unknown>> = [];
        const entry = async (p: string, shown: string): Promise<string> => {
          const s = await fs.lstat(p);
          const target = s.isSymbolicLink() ? await fs.readlink(p) : undefined;
          rows.push(statJson(p, s, target));
          if (o.l !== true) return shown;
          const when = new Date(Number(s.mtimeNs / 1_000_000n)).toISOString();
          const size = s.isCharacterDevice() || s.isBlockDevice() ? `${major(s.rdev)}, ${minor(s.rdev)}` : String(s.size);
          return `${modeString(s)} ${String(s.nlink).padStart(2)} ${String(s.uid).padStart(5)} ${String(s.gid).padStart(5)} ${size.padStart(9)} ${when} ${shown}${target !== undefined ? ` -> ${target}` : ''}`;
        };
        // As ls(1): files named on the line first, then each directory's entries under a header
        // when there is more than one argument.
        const files: string[] = [];
        const dirs: string[] = [];
        for (const p of targets) ((await fs.lstat(p)).isDirectory() ? dirs : files).push(p);
        const blocks: string[] = [];
        const fileLines: string[] = [];
        for (const p of files) fileLines.push(await entry(p, p === targets[0] && targets.length === 1 ? posix.basename(p) : p));
        if (fileLines.length > 0) blocks.push(fileLines.join('\n'));
        for (const d of dirs) {
          const lines: string[] = [];
          for (const n of (await fs.readdir(d)).sort()) lines.push(await entry(posix.join(d, n), n));
          blocks.push((targets.length > 1 ? `${d}:\n` : '') + lines.join('\n'));
        }
        print(blocks.filter((b) => b !== '').join('\n\n'), rows);
      }, true);
    });

  fsCmd
    .command('stat')
    .argument('<path>')
    .action(async (path: string) => {
      await withEngine(name, async (fs) => {
        const st = await fs.lstat(path);
        const target = st.isSymbolicLink() ? await fs.readlink(path) : undefined;
        const j = statJson(path, st, target);
        print(Object.entries(j).map(([k, v]) => `${k}: ${String(v)}`).join('\n'), j);
      }, true);
    });

  fsCmd
    .command('cat')
    .argument('<paths...>')
    .action(async (paths: string[]) => {
      await withEngine(name, async (fs) => {
        for (const p of paths) ctx.output.out((await fs.readFile(p)).toString('latin1'));
      }, true);
    });

  fsCmd
    .command('put')
    .description('write standard input to a file (created 0644 unless --mode)')
    .argument('<path>')
    .option('-m, --mode <octal>', 'mode for a new file')
    .option('-a, --append', 'append instead of replacing')
    .option('--offset <n>', 'write at this byte offset without truncating (like dd conv=notrunc seek=N)')
    .action(async (path: string, o: { mode?: string; append?: boolean; offset?: string }) => {
      const offset = o.offset !== undefined ? parseCount(o.offset, 'offset') : 0;
      const mode = o.mode !== undefined ? parseMode(o.mode) : FILE_MODE;
      const data = await readStdin();
      await withEngine(name, async (fs) => {
        if (o.offset !== undefined) {
          const h = await fs.open(path, fsc.O_WRONLY | fsc.O_CREAT, mode);
          try {
            await h.write(data, offset);
          } finally {
            await h.close();
          }
        } else if (o.append === true) await fs.appendFile(path, data, { mode });
        else await fs.writeFile(path, data, { mode });
      });
      print('', { path, bytes: data.length });
    });

  fsCmd
    .command('cp-in')
    .description('copy a host file or tree into the container (keeps mode, owner, times)')
    .argument('<src>', 'host path')
    .argument('<dst>', 'container path')
    .action(async (src: string, dst: string) => {
      await withEngine(name, async (fs) => {
        // Like cp: into an existing directory, under the source's name.
        const into = await fs.stat(dst).then((s) => s.isDirectory(), () => false);
        await copyIn(fs, src, into ? posix.join(dst, basename(src)) : dst);
      });
      print('', { src, dst });
    });

  fsCmd
    .command('cp-out')
    .description('copy a container file or tree to the host')
    .argument('<src>', 'container path')
    .argument('<dst>', 'host path')
    .action(async (src: string, dst: string) => {
      const into = await stat(dst).then((s) => s.isDirectory(), () => false);
      await withEngine(name, (fs) => copyOut(fs, src, into ? join(dst, posix.basename(src)) : dst), true);
      print('', { src, dst });
    });

  fsCmd
    .command('rm')
    .argument('<paths...>')
    .option('-r, --recursive', 'remove directories and their contents')
    .option('-f, --force', 'ignore missing paths')
    .action(async (paths: string[], o: { recursive?: boolean; force?: boolean }) => {
      await withEngine(name, async (fs) => {
        for (const p of paths) {
          if (o.recursive === true) refuseRoot(p, 'rm');
          await fs.rm(p, { recursive: o.recursive === true, force: o.force === true });
        }
      });
      print('', { removed: paths });
    });

  fsCmd
    .command('mkdir')
    .argument('<paths...>')
    .option('-p, --parents', 'make parents as needed, no error if existing')
    .option('-m, --mode <octal>', 'mode (default 0755)')
    .action(async (paths: string[], o: { parents?: boolean; mode?: string }) => {
      await withEngine(name, async (fs) => {
        for (const p of paths) await fs.mkdir(p, { mode: o.mode !== undefined ? parseMode(o.mode) : DIR_MODE, recursive: o.parents === true });
      });
      print('', { created: paths });
    });

  fsCmd
    .command('mv')
    .description("rename; a lower directory (EXDEV) is copied and deleted, as mv(1) does")
    .argument('<src>')
    .argument('<dst>')
    .action(async (src: string, dst: string) => {
      await withEngine(name, async (fs) => {
        dst = await intoDir(fs, dst, src);
        try {
          await fs.rename(src, dst);
        } catch (e) {
          if (!hasCode(e, 'EXDEV')) throw e;
          await copyWithin(fs, src, dst);
          await fs.rm(src, { recursive: true });
        }
      });
      print('', { src, dst });
    });

  fsCmd
    .command('ln')
    .argument('<target>')
    .argument('<link>')
    .option('-s, --symbolic', 'make a symbolic link')
    .action(async (target: string, link: string, o: { symbolic?: boolean }) => {
      await withEngine(name, async (fs) => {
        link = await intoDir(fs, link, target);
        if (o.symbolic === true) await fs.symlink(target, link);
        else await fs.link(target, link);
      });
      print('', { target, link });
    });

  fsCmd
    .command('chmod')
    .argument('<mode>', 'octal or symbolic mode, as chmod(1): 0755, u+x, go-w, a=rX')
    .argument('<paths...>')
    .action(async (mode: string, paths: string[]) => {
      applyChmodMode(mode, 0, false); // refuse a bad mode before touching anything
      await withEngine(name, async (fs) => {
        for (const p of paths) {
          // chmod(1) follows symlinks: the mode is computed from the target's.
          const st = await fs.stat(p);
          await fs.chmod(p, applyChmodMode(mode, Number(st.mode), st.isDirectory()));
        }
      });
      print('', { mode, paths });
    });

  fsCmd
    .command('chown')
    .argument('<owner>', 'UID[:GID]')
    .argument('<paths...>')
    .option('-h, --no-dereference', 'change a symlink itself')
    .action(async (owner: string, paths: string[], o: { dereference?: boolean }) => {
      const { uid, gid } = parseOwner(owner);
      await withEngine(name, async (fs) => {
        for (const p of paths) {
          if (o.dereference === false) await fs.lchown(p, uid, gid);
          else await fs.chown(p, uid, gid);
        }
      });
      print('', { uid, gid, paths });
    });

  fsCmd
    .command('touch')
    .argument('<paths...>')
    .option('-d, --date <when>', 'use this time instead of now (anything Date parses, or @SECONDS)')
    .action(async (paths: string[], o: { date?: string }) => {
      let ns: bigint;
      if (o.date === undefined) ns = BigInt(Date.now()) * 1_000_000n;
      else if (o.date.startsWith('@')) ns = BigInt(Math.round(Number(o.date.slice(1)) * 1e9));
      else {
        const t = Date.parse(o.date);
        if (Number.isNaN(t)) throw new OverlayError('EINVAL', 'touch', { reason: 'bad-date', detail: `invalid date '${o.date}'` });
        ns = BigInt(t) * 1_000_000n;
      }
      await withEngine(name, async (fs) => {
        for (const p of paths) {
          const exists = await fs.exists(p);
          if (!exists) await fs.writeFile(p, '', { mode: FILE_MODE, flag: 'wx' });
          await fs.utimes(p, ns, ns);
        }
      });
      print('', { paths });
    });

  fsCmd
    .command('mkfifo')
    .argument('<paths...>')
    .option('-m, --mode <octal>', 'mode (default 0644)')
    .action(async (paths: string[], o: { mode?: string }) => {
      await withEngine(name, async (fs) => {
        for (const p of paths) await fs.mkfifo(p, o.mode !== undefined ? parseMode(o.mode) : FILE_MODE);
      });
      print('', { created: paths });
    });

  fsCmd
    .command('mknod')
    .argument('<path>')
    .argument('<type>', 'c or b')
    .argument('<major>')
    .argument('<minor>')
    .option('-m, --mode <octal>', 'mode (default 0644)')
    .action(async (path: string, type: string, maj: string, min: string, o: { mode?: string }) => {
      if (type !== 'c' && type !== 'b') throw new OverlayError('EINVAL', 'mknod', { path, reason: 'bad-type', detail: "type must be 'c' or 'b'" });
      const mode = (type === 'c' ? S_IFCHR : S_IFBLK) | (o.mode !== undefined ? parseMode(o.mode) : FILE_MODE);
      const devMajor = parseCount(maj, 'major', 0xfffff);
      const devMinor = parseCount(min, 'minor', 0xfffff);
      await withEngine(name, (fs) => fs.mknod(path, mode, devMajor, devMinor));
      print('', { path });
    });

  fsCmd
    .command('setfattr')
    .argument('<path>')
    .option('-n, --name <name>', 'attribute to set')
    .option('-v, --value <value>', 'value as setfattr(1) takes it: text, "quoted\\ntext", 0x<hex> or 0s<base64> (default empty)')
    .option('-x, --remove <name>', 'attribute to remove (as setfattr -x NAME)')
    .action(async (path: string, o: { name?: string; value?: string; remove?: string }) => {
      if ((o.name === undefined) === (o.remove === undefined)) {
        throw new OverlayError('EINVAL', 'setfattr', { path, reason: 'usage', detail: 'give -n NAME [-v VALUE] to set, or -x NAME to remove' });
      }
      const value = decodeXattrValue(o.value ?? '');
      await withEngine(name, async (fs) => {
        if (o.remove !== undefined) await fs.removexattr(path, o.remove, { noFollow: true });
        else await fs.setxattr(path, o.name ?? '', value, { noFollow: true });
      });
      print('', { path, name: o.name ?? o.remove, removed: o.remove !== undefined });
    });

  fsCmd
    .command('getfattr')
    .argument('<path>')
    .option('-n, --name <name>', 'one attribute')
    .option('-e, --encoding <en>', 'text, hex or base64 (default: text when printable, else base64, as getfattr(1))')
    .action(async (path: string, o: { name?: string; encoding?: string }) => {
      const enc = o.encoding;
      if (enc !== undefined && enc !== 'text' && enc !== 'hex' && enc !== 'base64') {
        throw new OverlayError('EINVAL', 'getfattr', { reason: 'bad-encoding', detail: `unrecognized encoding '${enc}' (text, hex or base64)` });
      }
      await withEngine(name, async (fs) => {
        const names = o.name !== undefined ? [o.name] : (await fs.listxattr(path, { noFollow: true })).sort();
        const lines: string[] = [];
        // JSON: the exact bytes as base64, plus the text when they are valid UTF-8.
        const json: Record<string, { base64: string; text?: string }> = {};
        for (const n of names) {
          const v = await fs.getxattr(path, n, { noFollow: true });
          lines.push(`${n}=${encodeXattrValue(v, enc)}`);
          const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
          let t: string | undefined;
          try { t = text.decode(v); } catch { t = undefined; }
          json[n] = t !== undefined ? { base64: v.toString('base64'), text: t } : { base64: v.toString('base64') };
        }
        print(lines.join('\n'), json);
      }, true);
    });

  return fsCmd;
}

const OPS = 'ls, stat, cat, put, cp-in, cp-out, rm, mkdir, mv, ln, chmod, chown, touch, mkfifo, mknod, setfattr, getfattr';

export function registerFsCommand(program: Command, ctx: CliContext, print: Print): void {
  program
    .command('fs')
    .description("read and change a container's filesystem through the userspace engine (no mount, no root); ops: " + OPS)
    .usage('<container> <op> [args...]   (overlay2 fs <container> help: the ops)')
    .argument('<container>', 'name or id')
    .argument('<op>', OPS)
    .argument('[args...]', "the op's arguments")
    .allowUnknownOption()
    .helpOption(false)
    .action(async (name: string, op: string, args: string[]) => {
      await opsProgram(name, ctx, print).parseAsync([op, ...args], { from: 'user' });
    });
}
