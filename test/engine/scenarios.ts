/** Hand-written scenarios, one per overlay rule; shared by the differential and cross-mount tests. */
import type { LayerEntry, Scenario } from './harness.js';

const base: LayerEntry[] = [
  { t: 'file', p: 'f', data: 'abc' },
  { t: 'file', p: 'ro', data: 'read-only', mode: 0o444 },
  { t: 'file', p: 'd/x', data: 'x' },
  { t: 'file', p: 'd/sub/y', data: 'y' },
  { t: 'dir', p: 'empty' },
  { t: 'symlink', p: 'lnk', target: 'f' },
  { t: 'symlink', p: 'dangling', target: 'nowhere' },
  { t: 'file', p: 'owned', data: 'o', uid: 1000, xattrs: { 'user.k': 'v' } },
  { t: 'file', p: 'root/test', data: 't' },
  { t: 'file', p: 'test', data: 'T' },
];

export const scenarios: Record<string, Scenario> = {
  'copy-up on write keeps the lower intact (B40 A)': {
    lowers: [base],
    ops: [{ op: 'write', p: 'f', data: '0123456789' }, { op: 'chmod', p: 'f', mode: 0o600 }, { op: 'read', p: 'f' }],
  },
  'chmod/setxattr/rm on 0444 lower files (B40 B)': {
    lowers: [base],
    ops: [{ op: 'chmod', p: 'ro', mode: 0o644 }, { op: 'setxattr', p: 'ro', name: 'user.x', value: '1' }, { op: 'unlink', p: 'f' }],
  },
  'metadata-only changes copy the whole file (metacopy=off)': {
    lowers: [base],
    ops: [{ op: 'chown', p: 'owned', uid: 7, gid: 8 }, { op: 'utimes', p: 'd/x', ns: '1234567890123456789' }, { op: 'openrw', p: 'd/sub/y' }],
  },
  'whiteout scope: one path, whole subtree (B04)': {
    lowers: [base],
    upper: [{ t: 'whiteout', p: 'test' }],
    ops: [
      { op: 'stat', p: 'test' }, { op: 'write', p: 'root/test', data: 'new' }, { op: 'stat', p: 'root/test' },
      { op: 'unlink', p: 'd/x' }, { op: 'unlink', p: 'd/sub/y' }, { op: 'rmdir', p: 'd/sub' }, { op: 'rmdir', p: 'd' },
      { op: 'stat', p: 'd/x' }, { op: 'readdir', p: '' },
    ],
  },
  'middle-layer whiteout hides the lower dir under a recreated one (B02)': {
    lowers: [
      [{ t: 'file', p: 'dir1/dir2/baz', data: 'baz' }],
      [{ t: 'whiteout', p: 'dir1' }],
      [{ t: 'file', p: 'dir1/dir2/foo', data: 'foo' }, { t: 'file', p: 'b/bar', data: 'bar' }],
    ],
    ops: [{ op: 'readdir', p: 'dir1/dir2' }, { op: 'stat', p: 'dir1/dir2/foo' }, { op: 'read', p: 'b/bar' }, { op: 'write', p: 'dir1/dir2/new', data: 'n' }],
  },
  'opaque dirs and xwhiteouts in lowers': {
    lowers: [
      [{ t: 'dir', p: 'o', opaque: 'y' }, { t: 'file', p: 'o/top', data: '1' }, { t: 'dir', p: 'xw', opaque: 'x' }, { t: 'xwhiteout', p: 'xw/gone' }, { t: 'file', p: 'xw/kept', data: 'k' }],
      [{ t: 'file', p: 'o/hidden', data: 'h' }, { t: 'file', p: 'xw/gone', data: 'g' }, { t: 'file', p: 'xw/low', data: 'l' }],
    ],
    ops: [{ op: 'readdir', p: 'o' }, { op: 'readdir', p: 'xw' }, { op: 'stat', p: 'xw/gone' }, { op: 'stat', p: 'o/hidden' }],
  },
  'rmdir then mkdir makes an opaque dir; delete and recreate (B39)': {
    lowers: [base],
    ops: [
      { op: 'unlink', p: 'd/x' }, { op: 'unlink', p: 'd/sub/y' }, { op: 'rmdir', p: 'd/sub' }, { op: 'rmdir', p: 'd' },
      { op: 'mkdir', p: 'd' }, { op: 'readdir', p: 'd' }, { op: 'write', p: 'f2', data: 'z' }, { op: 'unlink', p: 'f2' },
      { op: 'unlink', p: 'f' }, { op: 'write', p: 'f', data: 'again' }, { op: 'rmdir', p: 'd' }, { op: 'mkdir', p: 'd' },
    ],
  },
  'errno of failing calls': {
    lowers: [base],
    ops: [
      { op: 'rmdir', p: 'd' }, { op: 'unlink', p: 'd' }, { op: 'rmdir', p: 'f' }, { op: 'mkdir', p: 'f' }, { op: 'mkdir', p: 'nope/x' },
      { op: 'write', p: 'f/x', data: '' }, { op: 'read', p: 'd' }, { op: 'readlink', p: 'f' }, { op: 'rename', p: 'd', to: 'd/sub/z' },
      { op: 'rename', p: 'f', to: 'd' }, { op: 'rename', p: 'empty', to: 'f' }, { op: 'link', p: 'd', to: 'dl' }, { op: 'link', p: 'f', to: 'lnk' },
      { op: 'symlink', p: 'dangling', target: 'x' }, { op: 'truncate', p: 'd', len: 0 }, { op: 'removexattr', p: 'f', name: 'user.none' },
      { op: 'stat', p: 'dangling' }, { op: 'rename', p: 'missing', to: 'x' }, { op: 'rmdir', p: 'empty/' },
    ],
  },
  'directory rename: EXDEV for lower dirs, pure upper dirs move (B34)': {
    lowers: [[{ t: 'file', p: 'test/mydir/file.txt', data: 'f' }]],
    ops: [
      { op: 'rename', p: 'test/mydir', to: 'test/mydir__' }, { op: 'mkdir', p: 'n' }, { op: 'rename', p: 'n', to: 'n2' },
      { op: 'rename', p: 'test/mydir/file.txt', to: 'test/f2' }, { op: 'mkdir', p: 'test/p' }, { op: 'rename', p: 'test/p', to: 'q' },
    ],
  },
  'directory rename with redirect_dir=on (B34)': {
    redirectDir: true,
    lowers: [[{ t: 'file', p: 'test/mydir/file.txt', data: 'f' }, { t: 'file', p: 'p/q/r', data: 'r' }, { t: 'dir', p: 'other' }]],
    ops: [
      { op: 'rename', p: 'test/mydir', to: 'test/mydir__' }, { op: 'read', p: 'test/mydir__/file.txt' },
      { op: 'rename', p: 'p/q', to: 'other/q2' }, { op: 'readdir', p: 'other/q2' }, { op: 'mkdir', p: 'test/new' },
    ],
  },
  'absolute redirect looks up every lower from its root (found by fast-check)': {
    redirectDir: true,
    lowers: [
      [{ t: 'whiteout', p: 'c/a' }, { t: 'dir', p: 'c' }],
      [{ t: 'symlink', p: 'c/b', target: 'd' }],
      [{ t: 'file', p: 'c/a', data: 'hidden' }, { t: 'file', p: 'c/c', data: 'cc' }, { t: 'dir', p: 'b/c' }],
    ],
    ops: [
      { op: 'setxattr', p: 'b/c', name: 'trusted.t', value: '1' }, { op: 'rename', p: 'c', to: 'b/c/d' },
      { op: 'readdir', p: 'b/c/d' }, { op: 'rename', p: 'b/c/d', to: 'b/e' }, { op: 'readdir', p: 'b/e' },
      { op: 'rename', p: 'b/e', to: 'c' }, { op: 'readdir', p: 'c' },
    ],
  },
  'metacopy=on: metadata-only copy-up, data on first write, redirect on rename and link': {
    metacopy: true,
    lowers: [base],
    ops: [
      { op: 'chmod', p: 'f', mode: 0o600 }, { op: 'read', p: 'f' }, { op: 'lstat', p: 'f' }, { op: 'chown', p: 'owned', uid: 3, gid: 3 },
      { op: 'rename', p: 'owned', to: 'd/owned2' }, { op: 'read', p: 'd/owned2' }, { op: 'link', p: 'd/x', to: 'xl' }, { op: 'read', p: 'xl' },
      { op: 'append', p: 'f', data: '+' }, { op: 'read', p: 'f' }, { op: 'setxattr', p: 'ro', name: 'user.m', value: '1' }, { op: 'truncate', p: 'ro', len: 4 },
      { op: 'utimes', p: 'd/sub/y', ns: '42' }, { op: 'rename', p: 'd/sub/y', to: 'y2' }, { op: 'openrw', p: 'y2' }, { op: 'mkdir', p: 'd/newdir' },
    ],
  },
  'file renames leave whiteouts; renames over whiteouts': {
    lowers: [base],
    ops: [
      { op: 'rename', p: 'f', to: 'g' }, { op: 'rename', p: 'g', to: 'f' }, { op: 'unlink', p: 'test' }, { op: 'rename', p: 'owned', to: 'test' },
      { op: 'write', p: 'up', data: 'u' }, { op: 'rename', p: 'up', to: 'd/up' }, { op: 'rename', p: 'lnk', to: 'd/lnk' },
    ],
  },
  'hard links copy the source up first': {
    lowers: [base],
    ops: [{ op: 'link', p: 'f', to: 'd/f-link' }, { op: 'append', p: 'd/f-link', data: '+' }, { op: 'read', p: 'f' }, { op: 'lstat', p: 'f' }],
  },
  'B03: an upper opaque dir hides the whole lower subtree, deep paths looked up first': {
    lowers: [[{ t: 'file', p: 'a/b/c/f', data: 'low' }, { t: 'file', p: 'a/b/g', data: 'g' }, { t: 'file', p: 'a/x', data: 'x' }]],
    upper: [{ t: 'dir', p: 'a', opaque: 'y' }, { t: 'dir', p: 'a/b' }, { t: 'file', p: 'a/top', data: 't' }],
    ops: [
      { op: 'stat', p: 'a/b/c' }, { op: 'stat', p: 'a/b/c/f' }, { op: 'read', p: 'a/b/c/f' }, { op: 'lstat', p: 'a/b/g' },
      { op: 'write', p: 'a/b/c/new', data: 'n' }, { op: 'unlink', p: 'a/x' }, { op: 'readdir', p: 'a/b' }, { op: 'readdir', p: 'a' },
      { op: 'mkdir', p: 'a/b/c' }, { op: 'readdir', p: 'a/b/c' }, { op: 'stat', p: 'a/b/c/f' }, { op: 'rmdir', p: 'a/b/c' }, { op: 'rmdir', p: 'a/b' },
    ],
  },
  'B03: an opaque dir in a middle lower hides everything below it, whatever the lookup order': {
    lowers: [
      [{ t: 'file', p: 'a/b/keep', data: 'k' }],
      [{ t: 'dir', p: 'a', opaque: 'y' }, { t: 'file', p: 'a/mid', data: 'm' }],
      [{ t: 'file', p: 'a/b/c/f', data: 'low' }, { t: 'file', p: 'a/b/old', data: 'o' }, { t: 'file', p: 'a/x', data: 'x' }, { t: 'file', p: 'z/deep/f', data: 'z' }],
    ],
    ops: [
      { op: 'read', p: 'a/b/c/f' }, { op: 'stat', p: 'a/b/c' }, { op: 'stat', p: 'a/b/old' }, { op: 'readdir', p: 'a/b' }, { op: 'read', p: 'a/b/keep' },
      { op: 'readdir', p: 'a' }, { op: 'stat', p: 'a/x' }, { op: 'read', p: 'z/deep/f' }, { op: 'unlink', p: 'a/b/keep' }, { op: 'rmdir', p: 'a/b' },
      { op: 'mkdir', p: 'a/b' }, { op: 'readdir', p: 'a/b' }, { op: 'stat', p: 'a/b/old' }, { op: 'rename', p: 'a/mid', to: 'a/b/old' }, { op: 'readdir', p: 'a' },
    ],
  },
  'B11: aliases of a lower hard link (nlink 3) through copy-up, overwrite and delete of one alias': {
    lowers: [[{ t: 'file', p: 'a', data: 'shared' }, { t: 'hardlink', p: 'b', target: 'a' }, { t: 'hardlink', p: 'd/c', target: 'a' }, { t: 'file', p: 'o', data: 'other' }]],
    ops: [
      { op: 'sameino', p: 'a', to: 'b' }, { op: 'lstat', p: 'b' }, { op: 'append', p: 'a', data: '+' }, { op: 'read', p: 'a' }, { op: 'read', p: 'b' },
      { op: 'sameino', p: 'a', to: 'b' }, { op: 'sameino', p: 'b', to: 'd/c' }, { op: 'lstat', p: 'a' }, { op: 'lstat', p: 'd/c' },
      { op: 'rename', p: 'o', to: 'd/c' }, { op: 'read', p: 'b' }, { op: 'lstat', p: 'b' }, { op: 'unlink', p: 'b' }, { op: 'read', p: 'a' }, { op: 'lstat', p: 'a' },
      { op: 'readdir', p: '' },
    ],
  },
  'B11: upper hard-link aliases keep their inode when another alias is renamed over or unlinked': {
    lowers: [base],
    upper: [{ t: 'file', p: 'x', data: 'xx' }, { t: 'hardlink', p: 'y', target: 'x' }, { t: 'hardlink', p: 'z', target: 'x' }, { t: 'file', p: 'w', data: 'ww' }],
    ops: [
      { op: 'sameino', p: 'x', to: 'y' }, { op: 'rename', p: 'w', to: 'x' }, { op: 'read', p: 'y' }, { op: 'sameino', p: 'y', to: 'z' }, { op: 'lstat', p: 'z' },
      { op: 'unlink', p: 'y' }, { op: 'lstat', p: 'z' }, { op: 'read', p: 'z' }, { op: 'link', p: 'z', to: 'y2' }, { op: 'link', p: 'f', to: 'f2' },
      { op: 'write', p: 'x', data: 'replaced' }, { op: 'read', p: 'z' }, { op: 'sameino', p: 'z', to: 'y2' }, { op: 'rename', p: 'f2', to: 'z' },
      { op: 'lstat', p: 'y2' }, { op: 'read', p: 'y2' }, { op: 'sameino', p: 'f', to: 'z' }, { op: 'unlink', p: 'f' }, { op: 'lstat', p: 'z' },
    ],
  },
  'B38: creating over an upper whiteout clears it; a dir over a whiteout is opaque; renames leave whiteouts': {
    lowers: [base],
    upper: [
      { t: 'whiteout', p: 'f' }, { t: 'whiteout', p: 'd' }, { t: 'whiteout', p: 'lnk' }, { t: 'whiteout', p: 'test' },
      { t: 'whiteout', p: 'empty' }, { t: 'whiteout', p: 'dangling' }, { t: 'whiteout', p: 'ro' },
    ],
    ops: [
      { op: 'stat', p: 'f' }, { op: 'readdir', p: '' }, { op: 'write', p: 'f', data: 'new' }, { op: 'mkdir', p: 'd' }, { op: 'readdir', p: 'd' },
      { op: 'stat', p: 'd/x' }, { op: 'symlink', p: 'lnk', target: 'f' }, { op: 'mkfifo', p: 'test' }, { op: 'link', p: 'f', to: 'empty' },
      { op: 'rename', p: 'root/test', to: 'dangling' }, { op: 'rename', p: 'owned', to: 'moved' }, { op: 'mkdir', p: 'ro' },
      { op: 'readdir', p: '' }, { op: 'readdir', p: 'root' }, { op: 'read', p: 'dangling' },
    ],
  },
  'B38: creating over a whiteout in a lower layer; rename of a lower file over a lower whiteout': {
    lowers: [
      [{ t: 'whiteout', p: 'd' }, { t: 'whiteout', p: 'f' }, { t: 'file', p: 'g', data: 'g' }],
      [{ t: 'file', p: 'd/x', data: 'x' }, { t: 'file', p: 'f', data: 'f' }, { t: 'file', p: 'h', data: 'h' }],
    ],
    ops: [
      { op: 'mkdir', p: 'd' }, { op: 'readdir', p: 'd' }, { op: 'stat', p: 'd/x' }, { op: 'rename', p: 'g', to: 'f' }, { op: 'read', p: 'f' },
      { op: 'stat', p: 'g' }, { op: 'rename', p: 'h', to: 'g' }, { op: 'readdir', p: '' },
    ],
  },
  'special files and symlinks': {
    lowers: [base],
    ops: [
      { op: 'mkfifo', p: 'fifo' }, { op: 'mknod', p: 'd/null', kind: 'chr', major: 1, minor: 3 }, { op: 'mknod', p: 'blk', kind: 'blk', major: 7, minor: 0 },
      { op: 'symlink', p: 'd/s', target: '../f' }, { op: 'read', p: 'd/s' }, { op: 'write', p: 'dangling', data: 'created' },
      { op: 'lchown', p: 'lnk', uid: 5, gid: 5 }, { op: 'mknod', p: 'test', kind: 'chr', major: 0, minor: 0 },
      { op: 'write', p: 'fifo', data: 'no reader' }, { op: 'read', p: 'fifo' }, { op: 'openrw', p: 'fifo' }, { op: 'read', p: 'd/null' },
    ],
  },
};


/**
 * Adversarial sequences (audit of issue 3): corner cases of the rules above, each checked against
 * the kernel like every scenario here. Handle ops (`hopen`…) keep a file open across later calls.
 */
export const adversarial: Record<string, Scenario> = {
  'rename a dir over a whiteout of a lower dir': {
    lowers: [base],
    ops: [
      { op: 'unlink', p: 'd/x' }, { op: 'unlink', p: 'd/sub/y' }, { op: 'rmdir', p: 'd/sub' }, { op: 'rmdir', p: 'd' },
      { op: 'mkdir', p: 'n' }, { op: 'write', p: 'n/inside', data: 'i' }, { op: 'rename', p: 'n', to: 'd' },
      { op: 'readdir', p: 'd' }, { op: 'rename', p: 'empty', to: 'd' }, { op: 'rename', p: 'd', to: 'd/inside' },
    ],
  },
  'redirect_dir=on: rename a lower dir over a whiteout, then into its own subdir': {
    redirectDir: true,
    lowers: [base],
    ops: [
      { op: 'unlink', p: 'root/test' }, { op: 'rmdir', p: 'root' }, { op: 'rename', p: 'd', to: 'root' },
      { op: 'readdir', p: 'root' }, { op: 'read', p: 'root/sub/y' }, { op: 'rename', p: 'root', to: 'root/sub/deeper' },
      { op: 'rename', p: 'root/sub', to: 'root/sub/x' }, { op: 'rename', p: 'empty', to: 'root' }, { op: 'rename', p: 'root/sub', to: 'empty' },
      { op: 'readdir', p: 'empty' }, { op: 'rmdir', p: 'root' },
    ],
  },
  'rmdir of a dir whose upper holds only whiteouts over lower entries': {
    lowers: [[{ t: 'file', p: 'w/a', data: 'a' }, { t: 'file', p: 'w/b', data: 'b' }, { t: 'file', p: 'v/a', data: 'a' }]],
    upper: [{ t: 'whiteout', p: 'w/a' }, { t: 'whiteout', p: 'v/a' }],
    ops: [
      { op: 'rmdir', p: 'w' }, { op: 'readdir', p: 'w' }, { op: 'rmdir', p: 'v' }, { op: 'stat', p: 'v' },
      { op: 'mkdir', p: 'v' }, { op: 'readdir', p: 'v' }, { op: 'unlink', p: 'w/b' }, { op: 'rmdir', p: 'w' }, { op: 'readdir', p: '' },
    ],
  },
  'hard link to a lower file, then write through one name': {
    lowers: [base],
    ops: [
      { op: 'link', p: 'd/x', to: 'xl' }, { op: 'write', p: 'xl', data: 'via-link' }, { op: 'read', p: 'd/x' }, { op: 'lstat', p: 'd/x' },
      { op: 'link', p: 'ro', to: 'd/ro2' }, { op: 'append', p: 'ro', data: '+' }, { op: 'read', p: 'd/ro2' }, { op: 'unlink', p: 'ro' },
      { op: 'lstat', p: 'd/ro2' }, { op: 'link', p: 'lnk', to: 'lnk2' }, { op: 'readlink', p: 'lnk2' },
    ],
  },
  'chmod/chown through a lower symlink, lchown and utimes of the link itself': {
    lowers: [base],
    ops: [
      { op: 'chmod', p: 'lnk', mode: 0o600 }, { op: 'lstat', p: 'lnk' }, { op: 'stat', p: 'lnk' }, { op: 'chown', p: 'lnk', uid: 9, gid: 9 },
      { op: 'lchown', p: 'dangling', uid: 4, gid: 4 }, { op: 'chmod', p: 'dangling', mode: 0o600 }, { op: 'chown', p: 'dangling', uid: 1, gid: 1 },
      { op: 'utimes', p: 'lnk', ns: '1000000000000000000' }, { op: 'lstat', p: 'lnk' },
    ],
  },
  'xattrs: set/get/list/remove on lower dirs, files and symlinks': {
    lowers: [base],
    ops: [
      { op: 'setxattr', p: 'd', name: 'user.dir', value: 'v' }, { op: 'getxattr', p: 'd', name: 'user.dir' }, { op: 'listxattr', p: 'd' },
      { op: 'setxattr', p: 'd/sub', name: 'trusted.t', value: 't' }, { op: 'listxattr', p: 'owned' }, { op: 'getxattr', p: 'owned', name: 'user.k' },
      { op: 'removexattr', p: 'owned', name: 'user.k' }, { op: 'getxattr', p: 'owned', name: 'user.k' }, { op: 'listxattr', p: 'owned' },
      { op: 'getxattr', p: 'f', name: 'user.none' }, { op: 'setxattr', p: 'lnk', name: 'user.x', value: '1' }, { op: 'getxattr', p: 'lnk', name: 'user.x' },
      { op: 'setxattr', p: 'lnk', name: 'trusted.l', value: '1' }, { op: 'getxattr', p: 'lnk', name: 'trusted.l' },
      { op: 'getxattr', p: 'd', name: 'trusted.overlay.opaque' }, { op: 'setxattr', p: 'd', name: 'trusted.overlay.opaque', value: 'y' },
      { op: 'removexattr', p: 'd', name: 'trusted.overlay.origin' }, { op: 'getxattr', p: 'missing', name: 'user.x' },
      { op: 'removexattr', p: 'd/x', name: 'user.none' }, { op: 'listxattr', p: 'missing' },
    ],
  },
  'handles: truncate and write of a lower file open read-only elsewhere': {
    lowers: [base],
    ops: [
      { op: 'hopen', h: 1, p: 'f', flags: 'r' }, { op: 'hread', h: 1 }, { op: 'truncate', p: 'f', len: 1 }, { op: 'hread', h: 1 }, { op: 'hstat', h: 1 },
      { op: 'hopen', h: 2, p: 'd/x', flags: 'r' }, { op: 'hopen', h: 3, p: 'd/x', flags: 'r+' }, { op: 'hwrite', h: 3, data: 'XYZ', at: 0 },
      { op: 'hread', h: 2 }, { op: 'htruncate', h: 3, len: 2 }, { op: 'hread', h: 2 }, { op: 'hwrite', h: 2, data: 'no', at: 0 },
      { op: 'htruncate', h: 2, len: 0 }, { op: 'hclose', h: 3 }, { op: 'hopen', h: 4, p: 'owned', flags: 'r' }, { op: 'chmod', p: 'owned', mode: 0o600 },
      { op: 'write', p: 'owned', data: 'new' }, { op: 'hread', h: 4 }, { op: 'hopen', h: 5, p: 'test', flags: 'r' }, { op: 'unlink', p: 'test' },
      { op: 'write', p: 'test', data: 'replaced' }, { op: 'hread', h: 5 }, { op: 'hopen', h: 6, p: 'root/test', flags: 'a' },
      { op: 'hwrite', h: 6, data: '!', at: 0 }, { op: 'hread', h: 6 }, { op: 'read', p: 'root/test' }, { op: 'hopen', h: 7, p: 'd', flags: 'r' },
      { op: 'hread', h: 7 }, { op: 'hopen', h: 8, p: 'lnk', flags: 'r' }, { op: 'append', p: 'f', data: '+' }, { op: 'hread', h: 8 },
    ],
  },
  'access and statfs, with the errno of failing checks': {
    lowers: [base],
    ops: [
      { op: 'access', p: 'f', mode: 0 }, { op: 'access', p: 'ro', mode: 2 }, { op: 'access', p: 'f', mode: 1 }, { op: 'access', p: 'd', mode: 7 },
      { op: 'access', p: 'missing', mode: 0 }, { op: 'access', p: 'dangling', mode: 0 }, { op: 'access', p: 'f/x', mode: 0 },
      { op: 'statfs', p: '' }, { op: 'statfs', p: 'd/x' }, { op: 'statfs', p: 'missing' }, { op: 'statfs', p: 'lnk' },
    ],
  },
  'read-only overlay: EROFS for writes, access W_OK, reads and statfs work': {
    readonly: true,
    lowers: [base, [{ t: 'file', p: 'below', data: 'b' }]],
    ops: [
      { op: 'access', p: 'f', mode: 2 }, { op: 'access', p: 'd', mode: 2 }, { op: 'access', p: 'f', mode: 4 }, { op: 'statfs', p: 'f' },
      { op: 'hopen', h: 1, p: 'f', flags: 'r+' }, { op: 'truncate', p: 'f', len: 0 }, { op: 'mknod', p: 'dev', kind: 'chr', major: 1, minor: 3 },
      { op: 'mkfifo', p: 'f' }, { op: 'setxattr', p: 'f', name: 'user.a', value: 'b' }, { op: 'removexattr', p: 'owned', name: 'user.k' },
      { op: 'utimes', p: 'f', ns: '5' }, { op: 'link', p: 'f', to: 'f2' }, { op: 'symlink', p: 'lnk', target: 'x' }, { op: 'getxattr', p: 'owned', name: 'user.k' },
    ],
  },
  'ELOOP, ENOTDIR and ENAMETOOLONG on lookups and creates': {
    lowers: [[...base, { t: 'symlink', p: 'loop', target: 'loop' }, { t: 'symlink', p: 'l1', target: 'l2' }, { t: 'symlink', p: 'l2', target: 'l1' }]],
    ops: [
      { op: 'stat', p: 'loop' }, { op: 'write', p: 'loop', data: 'x' }, { op: 'read', p: 'l1' }, { op: 'mkdir', p: 'loop/x' }, { op: 'chmod', p: 'l2', mode: 0o600 },
      { op: 'truncate', p: 'loop', len: 0 }, { op: 'access', p: 'loop', mode: 0 }, { op: 'lstat', p: 'loop' }, { op: 'unlink', p: 'loop' },
      { op: 'stat', p: 'f/' }, { op: 'write', p: 'f/', data: 'x' }, { op: 'mkdir', p: 'ro/x' }, { op: 'rename', p: 'f', to: 'ro/x' },
      { op: 'write', p: 'n'.repeat(256), data: 'x' }, { op: 'mkdir', p: 'd/' }, { op: 'rmdir', p: 'lnk' }, { op: 'unlink', p: 'd/' },
    ],
  },
  'special files: mknod over whiteouts, truncate and xattrs of a FIFO and a device': {
    lowers: [[...base, { t: 'fifo', p: 'pipe' }]],
    ops: [
      { op: 'unlink', p: 'f' }, { op: 'mknod', p: 'f', kind: 'chr', major: 1, minor: 5 }, { op: 'lstat', p: 'f' }, { op: 'mknod', p: 'f', kind: 'blk', major: 7, minor: 1 },
      { op: 'truncate', p: 'pipe', len: 0 }, { op: 'setxattr', p: 'pipe', name: 'user.p', value: '1' }, { op: 'setxattr', p: 'pipe', name: 'trusted.p', value: '1' },
      { op: 'chmod', p: 'pipe', mode: 0o600 }, { op: 'getxattr', p: 'pipe', name: 'trusted.p' }, { op: 'truncate', p: 'f', len: 0 },
      { op: 'rename', p: 'pipe', to: 'd/pipe' }, { op: 'utimes', p: 'd/pipe', ns: '77' }, { op: 'rmdir', p: 'd/pipe' },
    ],
  },
  'userxattr: private names are hidden and refused; opaque dirs in user.overlay': {
    userxattr: true,
    lowers: [[{ t: 'dir', p: 'o', opaque: 'y' }, { t: 'file', p: 'o/top', data: '1' }], [{ t: 'file', p: 'o/hidden', data: 'h' }, { t: 'file', p: 'd/x', data: 'x' }]],
    ops: [
      { op: 'readdir', p: 'o' }, { op: 'listxattr', p: 'o' }, { op: 'getxattr', p: 'o', name: 'user.overlay.opaque' },
      { op: 'setxattr', p: 'd', name: 'user.overlay.opaque', value: 'y' }, { op: 'setxattr', p: 'd', name: 'trusted.overlay.opaque', value: 'y' },
      { op: 'getxattr', p: 'd', name: 'trusted.overlay.opaque' }, { op: 'unlink', p: 'd/x' }, { op: 'rmdir', p: 'd' }, { op: 'mkdir', p: 'd' },
      { op: 'rename', p: 'o', to: 'o2' }, { op: 'setxattr', p: 'o/top', name: 'user.t', value: '1' }, { op: 'listxattr', p: 'o/top' },
    ],
  },
  'escaped overlay.overlay.* xattrs in a lower; a merged upper dir without origin gets one on lookup': {
    lowers: [[
      { t: 'dir', p: 'e', xattrs: { 'trusted.overlay.overlay.opaque': 'y' } }, { t: 'file', p: 'e/f', data: 'f', xattrs: { 'trusted.overlay.overlay.foo': '1' } },
      { t: 'file', p: 'm/a', data: 'a' }, { t: 'file', p: 'n/a', data: 'a' },
    ], [{ t: 'file', p: 'e/below', data: 'visible: the escaped opaque is not a marker' }]],
    upper: [{ t: 'dir', p: 'm' }, { t: 'file', p: 'n/b', data: 'b' }],
    ops: [
      { op: 'readdir', p: 'e' }, { op: 'getxattr', p: 'e', name: 'trusted.overlay.opaque' }, { op: 'listxattr', p: 'e/f' }, { op: 'chmod', p: 'e/f', mode: 0o600 },
      { op: 'getxattr', p: 'e/f', name: 'trusted.overlay.foo' }, { op: 'removexattr', p: 'e/f', name: 'trusted.overlay.foo' }, { op: 'setxattr', p: 'e', name: 'user.u', value: '1' },
      { op: 'stat', p: 'm' }, { op: 'readdir', p: 'n' }, { op: 'setxattr', p: 'n', name: 'trusted.overlay.redirect', value: '/x' }, { op: 'readdir', p: 'n' },
    ],
  },
  'hard links in a lower: copy-up of one alias breaks the link, as the kernel without index (B11)': {
    lowers: [[{ t: 'file', p: 'h/one', data: 'shared' }, { t: 'hardlink', p: 'h/two', target: 'h/one' }, { t: 'hardlink', p: 'three', target: 'h/one' }]],
    ops: [
      { op: 'lstat', p: 'h/one' }, { op: 'hopen', h: 1, p: 'h/two', flags: 'r' }, { op: 'write', p: 'h/one', data: 'changed' }, { op: 'read', p: 'h/two' },
      { op: 'hread', h: 1 }, { op: 'lstat', p: 'h/two' }, { op: 'unlink', p: 'three' }, { op: 'lstat', p: 'h/two' }, { op: 'link', p: 'h/two', to: 'four' },
      { op: 'append', p: 'four', data: '+' }, { op: 'read', p: 'h/two' }, { op: 'lstat', p: 'four' },
    ],
  },
  'an opaque dir hides the whole lower subtree, looked up at any depth (B03)': {
    lowers: [
      [{ t: 'dir', p: 'a', opaque: 'y' }, { t: 'file', p: 'a/b/c/foo', data: 'foo' }],
      [{ t: 'file', p: 'a/b/c/bar', data: 'bar' }, { t: 'file', p: 'a/baz', data: 'baz' }, { t: 'file', p: 'a/q/deep/x', data: 'x' }],
    ],
    ops: [
      { op: 'stat', p: 'a/b/c/bar' }, { op: 'stat', p: 'a/q/deep/x' }, { op: 'stat', p: 'a/q' }, { op: 'readdir', p: 'a/b/c' }, { op: 'write', p: 'a/q/deep/x', data: 'no' },
      { op: 'mkdir', p: 'a/q' }, { op: 'readdir', p: 'a/q' }, { op: 'rename', p: 'a/b/c/foo', to: 'a/baz' }, { op: 'readdir', p: 'a' },
    ],
  },
  'errno corner cases: trailing slashes, symlinks as targets, xattr create/replace, unlinked open files': {
    lowers: [base],
    ops: [
      { op: 'unlink', p: 'f/' }, { op: 'symlink', p: 'new/', target: 'x' }, { op: 'link', p: 'f', to: 'g/' }, { op: 'mkdir', p: 'lnk' }, { op: 'mkdir', p: 'dangling' },
      { op: 'mkdir', p: 'f/' }, { op: 'mkdir', p: 'lnk/' }, { op: 'mkdir', p: 'dangling/' }, { op: 'symlink', p: 'f/', target: 'x' }, { op: 'mkfifo', p: 'dangling/' },
      { op: 'link', p: 'ro', to: 'lnk/' }, { op: 'mknod', p: 'd/', kind: 'blk', major: 1, minor: 1 }, { op: 'mkdir', p: 'd/sub/' },
      { op: 'rename', p: 'lnk', to: 'd' }, { op: 'rename', p: 'empty', to: 'lnk' }, { op: 'rename', p: 'empty/', to: 'e2/' }, { op: 'rename', p: 'e2', to: 'empty' },
      { op: 'setxattr', p: 'owned', name: 'user.k', value: 'again', flags: 1 }, { op: 'setxattr', p: 'f', name: 'user.new', value: 'r', flags: 2 },
      { op: 'setxattr', p: 'f', name: 'user.new', value: 'c', flags: 1 }, { op: 'setxattr', p: 'f', name: 'user.new', value: 'r', flags: 2 }, { op: 'getxattr', p: 'f', name: 'user.new' },
      { op: 'hopen', h: 1, p: 'test', flags: 'r' }, { op: 'unlink', p: 'test' }, { op: 'hstat', h: 1 }, { op: 'hread', h: 1 },
      { op: 'write', p: 'up', data: 'upper file' }, { op: 'hopen', h: 2, p: 'up', flags: 'r+' }, { op: 'rename', p: 'up', to: 'd/up2' }, { op: 'hwrite', h: 2, data: 'UP', at: 0 },
      { op: 'read', p: 'd/up2' }, { op: 'unlink', p: 'd/up2' }, { op: 'hstat', h: 2 }, { op: 'hread', h: 2 }, { op: 'hwrite', h: 1, data: 'x', at: 0 },
      { op: 'hopen', h: 3, p: 'root/test', flags: 'r' }, { op: 'rename', p: 'root/test', to: 'moved' }, { op: 'hread', h: 3 }, { op: 'hstat', h: 3 },
      { op: 'utimes', p: 'test', ns: '1' }, { op: 'chown', p: 'f', uid: -1, gid: -1 }, { op: 'mknod', p: 'empty/x', kind: 'chr', major: 0, minor: 0 }, { op: 'readdir', p: 'empty' },
    ],
  },
  'handles on a lower dir and a lower FIFO see their copy-up (metadata) like the kernel\'s overlay inode': {
    lowers: [[...base, { t: 'fifo', p: 'pipe' }], [{ t: 'dir', p: 'd' }, { t: 'file', p: 'd/low', data: 'l' }]],
    ops: [
      { op: 'hopen', h: 1, p: 'd', flags: 'r' }, { op: 'hopen', h: 2, p: 'empty', flags: 'r' }, { op: 'hopen', h: 3, p: 'pipe', flags: 'r' }, { op: 'hstat', h: 1 },
      { op: 'chmod', p: 'd', mode: 0o700 }, { op: 'chown', p: 'empty', uid: 5, gid: 6 }, { op: 'chmod', p: 'pipe', mode: 0o600 }, { op: 'hstat', h: 1 }, { op: 'hstat', h: 2 },
      { op: 'hstat', h: 3 }, { op: 'mkdir', p: 'n' }, { op: 'rename', p: 'empty', to: 'n/e' }, { op: 'chmod', p: 'n/e', mode: 0o711 }, { op: 'hstat', h: 2 },
    ],
  },
  'metacopy=on: a handle opened before a metadata-only copy-up shows the new metadata': {
    metacopy: true,
    lowers: [base],
    ops: [
      { op: 'hopen', h: 1, p: 'f', flags: 'r' }, { op: 'chmod', p: 'f', mode: 0o600 }, { op: 'hstat', h: 1 }, { op: 'hread', h: 1 }, { op: 'chown', p: 'f', uid: 3, gid: 4 },
      { op: 'hstat', h: 1 }, { op: 'append', p: 'f', data: '+' }, { op: 'hread', h: 1 }, { op: 'hstat', h: 1 },
    ],
  },
  'trailing slashes and dot names on unlink/rmdir/rename: the symlink itself, never its target': {
    lowers: [[...base, { t: 'symlink', p: 'dl', target: 'empty' }, { t: 'symlink', p: 'd2', target: 'd/sub' }]],
    ops: [
      { op: 'rmdir', p: 'dl/' }, { op: 'rmdir', p: 'dl' }, { op: 'unlink', p: 'dl/' }, { op: 'readdir', p: 'empty' }, { op: 'rename', p: 'd2/', to: 'x' },
      { op: 'rename', p: 'f', to: 'newname/' }, { op: 'rename', p: 'f/', to: 'newname' }, { op: 'rmdir', p: 'd/sub/.' }, { op: 'rmdir', p: 'd/sub/..' },
      { op: 'unlink', p: 'd/.' }, { op: 'rename', p: 'd/.', to: 'e' }, { op: 'rename', p: 'empty', to: 'd/..' }, { op: 'unlink', p: 'missing/' },
      { op: 'rename', p: 'empty/', to: 'e2/' }, { op: 'rmdir', p: 'e2/' }, { op: 'unlink', p: 'd2' }, { op: 'readdir', p: 'd/sub' },
    ],
  },
  'read-only overlay: EROFS comes before the trailing-slash and dot-name checks': {
    readonly: true,
    lowers: [[...base, { t: 'symlink', p: 'dl', target: 'empty' }], [{ t: 'file', p: 'below', data: 'b' }]],
    ops: [
      { op: 'rename', p: 'd', to: 'f/' }, { op: 'rename', p: 'f', to: 'g/' }, { op: 'unlink', p: 'f/' }, { op: 'rmdir', p: 'dl/' }, { op: 'rmdir', p: 'f/' },
      { op: 'rmdir', p: 'd/.' }, { op: 'unlink', p: 'd/..' }, { op: 'rename', p: 'd/.', to: 'x' }, { op: 'mkdir', p: 'f/' }, { op: 'symlink', p: 'new/', target: 'x' },
    ],
  },
};
