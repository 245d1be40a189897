/**
 * Tar member names → clean paths relative to the layer root. Leading `/` and `./` are stripped and the
 * name is cleaned lexically ("a//b/./c" → "a/b/c", "a/../b" → "b"); a `..` that would climb above the
 * root is a breakout and returns null. The layer root itself is "". Cleaning is purely lexical, as in
 * Docker: symlinks are never consulted here (the extractor refuses to write through them separately).
 */

/** The cleaned relative path, "" for the root, or null when the name escapes the root. */
export function cleanEntryPath(name: string): string | null {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** Parent of a clean relative path ("" for top-level entries). */
export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Last component of a clean relative path. */
export function baseOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? rel : rel.slice(i + 1);
}

/** True when `rel` is `dir` itself or lies below it ("" is the root and contains everything). */
export function isWithin(rel: string, dir: string): boolean {
  if (dir === '') return true;
  return rel === dir || (rel.length > dir.length && rel.startsWith(dir) && rel.charCodeAt(dir.length) === 47);
}
