/**
 * Every `overlay2 fs` op end to end through the CLI, checked against the kernel: one container is
 * changed only with `overlay2 fs` (the engine, no mount), a second one of the same image with the
 * coreutils/attr commands a user would run on its kernel mount (cp -a, mv, ln, chmod, chown,
 * touch, mkfifo, mknod, setfattr…). Outputs of the read ops, the errno of failing ops, `diff`, the
 * merged trees (types, modes, owners, sizes, contents, link targets, times, xattrs, hard links)
 * and the trees copied out to the host must be the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { EXAMPLE, cli, ok } from '../helpers/cli.js';
import { treeListing } from '../helpers/tree-listing.js';
import { codeOf } from '../engine/harness.js';
import { llistxattr, lgetxattr, lsetxattr, lutimesNs, mknod, timespecFromNs, S_IFIFO } from '../../src/sys/libc.js';

const T = 1_700_000_000n;

function sh(cmd: string, input?: string): string {
  const r = spawnSync('sh', ['-c', `umask 022; ${cmd}`], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** A host tree for cp-in: modes, owners, fixed times, a symlink, a FIFO, a hard link, an xattr. */
function hostTree(dir: string): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a'), 'host file a\n');
  chmodSync(join(src, 'a'), 0o640);
  lchownSync(join(src, 'a'), 1234, 5678);
  lsetxattr(join(src, 'a'), 'user.origin', 'host');
  linkSync(join(src, 'a'), join(src, 'sub', 'a-link'));
  writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 7));
  symlinkSync('../a', join(src, 'sub', 'l'));
  mknod(join(src, 'sub', 'p'), S_IFIFO | 0o600);
  chmodSync(join(src, 'sub'), 0o750);
  const t = timespecFromNs(T * 1_000_000_000n);
  for (const p of ['sub/a-link', 'sub/l', 'sub/p', 'big', 'sub', '']) lutimesNs(join(src, p), t, t);
  return src;
}

/** Tree listing plus xattrs and hard-link groups. */
function fullListing(root: string, nowPaths: Set<string>): string[] {
  const inodes = new Map<string, string[]>();
  const walk = (d: string, rel: string): void => {
    for (const n of readdirSync(d).sort()) {
      const st = lstatSync(join(d, n), { bigint: true });
      if (!st.isDirectory() && st.nlink > 1n) inodes.set(String(st.ino), [...(inodes.get(String(st.ino)) ?? []), `${rel}/${n}`]);
      if (st.isDirectory()) walk(join(d, n), `${rel}/${n}`);
    }
  };
  walk(root, '');
  const links = [...inodes.values()].map((g) => `links ${g.sort().join(' ')}`).sort();
  return [
    ...treeListing(root).map((l) => {
      const p = l.split(' ')[0] ?? '';
      const xs = llistxattr(join(root, p)).sort().map((x) => `${x}=${lgetxattr(join(root, p), x)?.toString()}`);
      return (nowPaths.has(p) ? l.replace(/ t=\d+/, ' t=*') : l) + (xs.length ? ` x{${xs.join(',')}}` : '');
    }),
    ...links,
  ];
}

test('every `overlay2 fs` op through the CLI does what the same command does on a kernel mount', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'setfattr') || !requiresCommand(t, 'getfattr')) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const src = hostTree(dir);
  ok(root, ['load', EXAMPLE]);
  ok(root, ['create', '--name', 'eng', 'example:1']);
  ok(root, ['create', '--name', 'kern', 'example:1']);
  const M = ok(root, ['mount', 'kern']).trim();
  const fs = (...args: string[]): string => ok(root, ['fs', 'eng', ...args]);
  const fsIn = (input: string, ...args: string[]): string => ok(root, ['fs', 'eng', ...args], input);

  // Reads first, on the untouched image.
  assert.deepEqual(fs('ls', '/bin').split('\n').filter(Boolean), readdirSync(join(M, 'bin')).sort());
  // Several paths: files first, then each directory under a header, blank lines between (ls(1)).
  assert.equal(fs('ls', '/etc/motd', '/bin', '/etc').replace(/^\//gm, ''), sh(`cd ${M} && LC_ALL=C ls etc/motd bin etc`));
  const lsl = (s: string): string[] => s.split('\n').filter((l) => l !== '' && !l.startsWith('total'))
    .map((l) => { const f = l.split(/\s+/); return [...f.slice(0, 5), ...f.slice(6)].join(' '); });
  assert.deepEqual(lsl(fs('ls', '-l', '/bin')), lsl(sh(`ls -ln --time-style=+%s ${M}/bin`)));
  assert.deepEqual(lsl(fs('ls', '-l', '/etc/release')), lsl(sh(`ls -ln --time-style=+%s ${M}/etc/release`)).map((l) => l.replace(`${M}/etc/`, '')));
  const st = JSON.parse(ok(root, ['--json', 'fs', 'eng', 'stat', '/home/user/notes.txt'])) as Record<string, unknown>;
  const kst = sh(`stat -c '%a %u %g %s %h %F' ${M}/home/user/notes.txt`).trim().split(' ');
  assert.deepEqual([Number(st['mode']).toString(), st['uid'], st['gid'], st['size'], st['nlink']].map(String), [kst[0]!.padStart(4, '0').replace(/^0+/, ''), ...kst.slice(1, 5)].map((x, i) => (i === 0 ? String(Number(x)) : x)));
  assert.equal(fs('cat', '/etc/motd', '/etc/hostname'), readFileSync(join(M, 'etc/motd'), 'latin1') + readFileSync(join(M, 'etc/hostname'), 'latin1'));

  // Changes: the engine through the CLI, the kernel through the usual commands.
  const steps: Array<[() => void, string]> = [
    [() => fsIn('new motd\n', 'put', '/etc/motd'), `printf 'new motd\\n' > ${M}/etc/motd`],
    [() => fsIn('+1\n', 'put', '-a', '/etc/hostname'), `printf '+1\\n' >> ${M}/etc/hostname`],
    [() => fsIn('secret', 'put', '-m', '600', '/new.txt'), `(umask 077; printf secret > ${M}/new.txt)`],
    [() => fsIn('ZZ', 'put', '--offset', '2', '/bin/greet'), `printf ZZ | dd of=${M}/bin/greet bs=1 seek=2 conv=notrunc status=none`],
    [() => fs('cp-in', src, '/opt'), `cp -a ${src} ${M}/opt`],
    [() => fs('cp-in', join(src, 'a'), '/etc'), `cp -a ${src}/a ${M}/etc/`],
    [() => fs('rm', '-r', '/var/cache'), `rm -r ${M}/var/cache`],
    [() => fs('rm', '/etc/os-release', '/bin/hi'), `rm ${M}/etc/os-release ${M}/bin/hi`],
    [() => fs('rm', '-f', '/no/such/file'), `rm -f ${M}/no/such/file`],
    [() => fs('mkdir', '-p', '/srv/a/b'), `mkdir -p ${M}/srv/a/b`],
    [() => fs('mkdir', '-m', '700', '/private', '/private/inner'), `mkdir -m 700 ${M}/private ${M}/private/inner`],
    [() => fs('mv', '/home', '/home2'), `mv ${M}/home ${M}/home2`],
    [() => fs('mv', '/etc/motd', '/srv/motd.moved'), `mv ${M}/etc/motd ${M}/srv/motd.moved`],
    [() => fs('mv', '/srv/a', '/srv/a2'), `mv ${M}/srv/a ${M}/srv/a2`],
    [() => fs('mv', '/etc/hostname', '/srv/a2'), `mv ${M}/etc/hostname ${M}/srv/a2`],
    [() => fs('mv', '/srv/a2/hostname', '/etc/hostname'), `mv ${M}/srv/a2/hostname ${M}/etc/hostname`],
    [() => fs('mv', '/var', '/srv'), `mv ${M}/var ${M}/srv`],
    [() => fs('ln', '-s', '../bin/greet', '/srv'), `ln -s ../bin/greet ${M}/srv`],
    [() => fs('ln', '/bin/greet-hardlink', '/srv/a2'), `ln ${M}/bin/greet-hardlink ${M}/srv/a2`],
    [() => fs('ln', '/bin/greet', '/srv/greet-link'), `ln ${M}/bin/greet ${M}/srv/greet-link`],
    [() => fs('ln', '-s', '../etc/hostname', '/srv/hn'), `ln -s ../etc/hostname ${M}/srv/hn`],
    [() => fs('chmod', '0700', '/bin/greet', '/usr'), `chmod 0700 ${M}/bin/greet ${M}/usr`],
    [() => fs('chmod', '4755', '/srv/a2/b'), `chmod 4755 ${M}/srv/a2/b`],
    [() => fs('chown', '42:43', '/etc/hostname'), `chown 42:43 ${M}/etc/hostname`],
    [() => fs('chown', '7', '/opt/big'), `chown 7:7 ${M}/opt/big`],
    [() => fs('chown', '-h', '8:9', '/etc/release'), `chown -h 8:9 ${M}/etc/release`],
    [() => fs('touch', '-d', `@${T}`, '/etc/hostname', '/srv/new-empty'), `touch -d @${T} ${M}/etc/hostname ${M}/srv/new-empty`],
    [() => fs('touch', '-d', '2023-01-02T03:04:05Z', '/bin/greet-hardlink'), `touch -d 2023-01-02T03:04:05Z ${M}/bin/greet-hardlink`],
    [() => fs('mkfifo', '/srv/fifo'), `mkfifo ${M}/srv/fifo`],
    [() => fs('mkfifo', '-m', '600', '/srv/fifo2'), `mkfifo -m 600 ${M}/srv/fifo2`],
    [() => fs('mknod', '/srv/null', 'c', '1', '3'), `mknod -m 644 ${M}/srv/null c 1 3`],
    [() => fs('setfattr', '-n', 'user.k', '-v', 'v1', '/etc/hostname'), `setfattr -n user.k -v v1 ${M}/etc/hostname`],
    [() => fs('setfattr', '-n', 'user.gone', '-v', 'x', '/bin'), `setfattr -n user.gone -v x ${M}/bin`],
    [() => fs('setfattr', '-x', 'user.gone', '/bin'), `setfattr -x user.gone ${M}/bin`],
    [() => fs('setfattr', '-n', 'trusted.t', '-v', 'tv', '/usr/share'), `setfattr -n trusted.t -v tv ${M}/usr/share`],
  ];
  for (const [engine, kernel] of steps) {
    engine();
    sh(kernel);
  }
  assert.equal(fs('getfattr', '/etc/hostname').trim(), sh(`getfattr -d --absolute-names ${M}/etc/hostname | grep -v '^#' | grep .`).trim());
  assert.equal(fs('getfattr', '-n', 'trusted.t', '/usr/share').trim(), 'trusted.t="tv"');
  assert.equal(sh(`getfattr --only-values -n trusted.t ${M}/usr/share`), 'tv');

  // Failing ops: the errno name of the same call on the kernel mount, and the path.
  const failing: Array<[string[], () => void, string]> = [
    [['rm', '/nonexistent'], () => sh(`rm ${M}/nonexistent 2>/dev/null`), '/nonexistent'],
    [['rm', '/srv'], () => sh(`rm ${M}/srv`), '/srv'],
    [['mkdir', '/etc'], () => sh(`mkdir ${M}/etc`), '/etc'],
    [['mkdir', '/nope/x'], () => sh(`mkdir ${M}/nope/x`), '/nope/x'],
    [['ln', '-s', 'x', '/etc/hostname'], () => sh(`ln -s x ${M}/etc/hostname`), '/etc/hostname'],
    [['mv', '/srv', '/srv/a2/b/c'], () => sh(`mv ${M}/srv ${M}/srv/a2/b/c`), '/srv'],
    [['cat', '/srv'], () => sh(`cat ${M}/srv`), '/srv'],
    [['ln', '/srv', '/srv-link'], () => sh(`ln ${M}/srv ${M}/srv-link`), '/srv'],
    [['setfattr', '-n', 'user.x', '-v', '1', '/etc/release'], () => sh(`setfattr -h -n user.x -v 1 ${M}/etc/release`), '/etc/release'],
    [['getfattr', '-n', 'user.none', '/etc/hostname'], () => sh(`getfattr -n user.none ${M}/etc/hostname`), '/etc/hostname'],
  ];
  for (const [args, kernel, path] of failing) {
    const r = cli(root, ['fs', 'eng', ...args]);
    assert.equal(r.status, 1, `fs ${args.join(' ')} should fail: ${r.stdout}`);
    const m = /^overlay2: (E[A-Z]+): .*?'([^']+)'/.exec(r.stderr);
    assert.ok(m !== null, `fs ${args.join(' ')}: no errno and path in: ${r.stderr}`);
    assert.equal(m[2], path, r.stderr);
    assert.throws(kernel, `the kernel-side command for fs ${args.join(' ')} should fail too`);
    assert.equal(m[1], KERNEL_ERRNO(M, args), `fs ${args.join(' ')}: ${r.stderr}`);
  }

  // cp-out: the same host trees from both.
  mkdirSync(join(dir, 'out-e'));
  mkdirSync(join(dir, 'out-k'));
  fs('cp-out', '/opt', join(dir, 'out-e'));
  fs('cp-out', '/bin', join(dir, 'out-e', 'bin-copy'));
  sh(`cp -a ${M}/opt ${dir}/out-k/ && cp -a ${M}/bin ${dir}/out-k/bin-copy`);
  assert.deepEqual(fullListing(join(dir, 'out-e'), new Set()), fullListing(join(dir, 'out-k'), new Set()));

  ok(root, ['umount', 'kern']);
  assert.deepEqual(ok(root, ['diff', 'eng']).split('\n').sort(), ok(root, ['diff', 'kern']).split('\n').sort());
  // Both merged views through the kernel: files whose mtime is "now" compare without it.
  // Times of now: what the ops set, and the init layer's files (made when each container was created).
  const now = new Set(['/.dockerenv', '/dev/console', '/etc/hosts', '/etc/mtab', '/etc/resolv.conf', '/srv/greet', '/etc/motd', '/new.txt', '/srv/motd.moved', '/srv/hn', '/srv/fifo', '/srv/fifo2', '/srv/null', '/etc/release', '/bin/greet', '/bin/greet-hardlink', '/srv/greet-link']);
  const me = ok(root, ['mount', 'eng']).trim();
  const mk = ok(root, ['mount', 'kern']).trim();
  try {
    assert.deepEqual(fullListing(me, now), fullListing(mk, now));
  } finally {
    ok(root, ['umount', 'eng']);
    ok(root, ['umount', 'kern']);
  }
});

/** The errno the kernel gives for the syscall behind a failing fs op (on the mount). */
function KERNEL_ERRNO(M: string, args: string[]): string {
  const P = (p: string): string => join(M, p);
  try {
    switch (args[0]) {
      case 'rm': {
        // rm(1) without -r unlinks: a dir is refused (EISDIR on Linux), a missing name is ENOENT.
        return codeOf(tryCall(() => unlinkSync(P(args[1]!))));
      }
      case 'mkdir': return codeOf(tryCall(() => mkdirSync(P(args[1]!))));
      case 'ln': return args[1] === '-s' ? codeOf(tryCall(() => symlinkSync(args[2]!, P(args[3]!)))) : codeOf(tryCall(() => linkSync(P(args[1]!), P(args[2]!))));
      case 'mv': return codeOf(tryCall(() => renameSync(P(args[1]!), P(args[2]!))));
      case 'cat': return codeOf(tryCall(() => readFileSync(P(args[1]!))));
      case 'setfattr': return codeOf(tryCall(() => lsetxattr(P(args[5]!), args[2]!, args[4]!)));
      case 'getfattr': return codeOf(tryCall(() => { if (lgetxattr(P(args[3]!), args[2]!) === null) throw Object.assign(new Error(), { code: 'ENODATA' }); }));
    }
  } catch (e) {
    return codeOf(e);
  }
  return `unknown op ${args[0]}`;
}

function tryCall(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return new Error('the call succeeded');
}

