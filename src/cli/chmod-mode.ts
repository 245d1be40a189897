/**
 * chmod(1) mode arguments: octal (`0755`, `4755`) or symbolic (`u+x`, `go-w`, `a=rX,u+s`,
 * `g=u`), applied to a file's current mode the way coreutils applies them. With no `ugoa`
 * letter the umask filters the bits, as in a shell; `fs` works as a shell with umask 022.
 */
import { OverlayError } from '../errors.js';

const UMASK = 0o022;
const WHO: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 };

function bad(spec: string): OverlayError {
  return new OverlayError('EINVAL', 'parse mode', { reason: 'bad-mode', detail: `invalid mode: '${spec}'` });
}

/** The new permission bits (0o7777) for `spec` applied to `current` (the file's st_mode). */
export function applyChmodMode(spec: string, current: number, isDir: boolean): number {
  if (/^[0-7]+$/.test(spec)) {
    const v = parseInt(spec, 8);
    if (v > 0o7777) throw bad(spec);
    // A directory keeps setuid/setgid under a short octal mode that does not set them (00755 clears them).
    const keep = isDir && spec.length < 5 ? current & 0o6000 & ~v : 0;
    return v | keep;
  }
  let mode = current & 0o7777;
  for (const clause of spec.split(',')) {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(clause);
    if (!m) throw bad(spec);
    const whoLetters = m[1] ?? '';
    const who = whoLetters === '' ? 0o7777 : [...whoLetters].reduce((acc, c) => acc | (WHO[c] ?? 0), 0);
    const mask = whoLetters === '' ? ~UMASK & 0o7777 : 0o7777;
    for (const [, op, perms] of (m[2] ?? '').matchAll(/([-+=])([ugo]|[rwxXst]*)/g)) {
      let bits = 0;
      if (perms !== undefined && /^[ugo]$/.test(perms)) {
        // Copy another class's rwx onto the selected classes.
        const shift = perms === 'u' ? 6 : perms === 'g' ? 3 : 0;
        const rwx = (mode >> shift) & 7;
        bits = (rwx << 6) | (rwx << 3) | rwx;
      } else {
        for (const c of perms ?? '') {
          if (c === 'r') bits |= 0o444;
          else if (c === 'w') bits |= 0o222;
          else if (c === 'x') bits |= 0o111;
          else if (c === 'X') { if (isDir || (mode & 0o111) !== 0) bits |= 0o111; }
          else if (c === 's') bits |= 0o6000;
          else if (c === 't') bits |= 0o1000;
        }
      }
      const sel = bits & who & mask;
      if (op === '+') mode |= sel;
      else if (op === '-') mode &= ~sel;
      else {
        // '=' clears the selected classes, then sets; a directory keeps setuid/setgid unless named.
        const omit = isDir ? 0o6000 & ~(bits & who) : 0;
        mode = (mode & (~who | omit)) | sel;
      }
    }
  }
  return mode & 0o7777;
}
