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

