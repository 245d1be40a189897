/**
 * uname/gname for tar headers, looked up the way Go's os/user does without cgo: the first valid
 * line of the HOST's /etc/passwd (/etc/group) whose id field matches; empty when there is none.
 * Docker's layer writer does exactly this, so the names depend on the machine that writes the layer.
 */
import { readFile } from 'node:fs/promises';
import { isNotFound } from '../errors.js';

/** Maps numeric ids to names; the default reads the host's passwd and group files. */
export interface IdNames {
  user(uid: number): string;
  group(gid: number): string;
}

function parse(text: string, minFields: number): Map<number, string> {
  const map = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length < minFields) continue;
    const name = parts[0]!;
    if (name === '' || name.startsWith('+') || name.startsWith('-')) continue;
    const id = parts[2]!;
    if (!/^[+-]?\d+$/.test(id)) continue;
    if (minFields >= 7 && !/^[+-]?\d+$/.test(parts[3]!)) continue;
    const n = Number(id);
    if (!map.has(n)) map.set(n, name);
  }
  return map;
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return '';
    throw e;
  }
}

/** Read the host's /etc/passwd and /etc/group once. */
export async function hostIdNames(passwd = '/etc/passwd', group = '/etc/group'): Promise<IdNames> {
  const users = parse(await readOrEmpty(passwd), 7);
  const groups = parse(await readOrEmpty(group), 4);
  return {
    user: (uid) => users.get(uid) ?? '',
    group: (gid) => groups.get(gid) ?? '',
  };
}
