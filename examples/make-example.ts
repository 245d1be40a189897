/**
 * Generates examples/example-image.tar: a small `docker save`-format image made by the project
 * (three layers: a base with a hard link and symlinks, then whiteouts, an opaque dir and a dir
 * whiteout). Deterministic: fixed times and owners, so the committed archive can be regenerated.
 * Usage: node dist/examples/make-example.js OUT.tar
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeDockerSave } from '../src/image/index.js';
import tarStream from 'tar-stream';

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  mode?: number;
  body?: string;
  linkname?: string;
  uid?: number;
  gid?: number;
}

const MTIME = new Date('2026-11-01T12:00:00Z');

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const header: tarStream.Header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: MTIME,
      size: e.body !== undefined ? Buffer.byteLength(e.body) : 0,
      linkname: e.linkname ?? '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    };
    pack.entry(header, e.body ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: make-example OUT.tar');
  const layers = [
    await tarOf([
      { name: 'bin/' },
      { name: 'bin/greet', mode: 0o755, body: '#!/bin/sh\necho "hello from the example image"\n' },
      { name: 'bin/greet-hardlink', type: 'link', linkname: 'bin/greet', mode: 0o755 },
      { name: 'bin/hi', type: 'symlink', linkname: 'greet' },
      { name: 'etc/' },
      { name: 'etc/hostname', body: 'example\n' },
      { name: 'etc/os-release', body: 'NAME="overlay2 example"\nID=example\n' },
      { name: 'etc/obsolete.conf', body: 'remove me in layer 2\n' },
      { name: 'usr/' },
      { name: 'usr/share/' },
      { name: 'usr/share/doc/' },
      { name: 'usr/share/doc/example/' },
      { name: 'usr/share/doc/example/README', body: 'documentation removed in layer 3\n' },
      { name: 'var/' },
      { name: 'var/cache/' },
      { name: 'var/cache/app/' },
      { name: 'var/cache/app/stale-1', body: 'stale\n' },
      { name: 'var/cache/app/stale-2', body: 'stale\n' },
      { name: 'home/' },
      { name: 'home/user/', mode: 0o750, uid: 1000, gid: 1000 },
      { name: 'home/user/notes.txt', body: 'owned by 1000\n', uid: 1000, gid: 1000, mode: 0o600 },
    ]),
    await tarOf([
      { name: 'etc/' },
      { name: 'etc/.wh.obsolete.conf' },
      { name: 'etc/motd', body: 'Welcome to the overlay2 example.\n' },
      { name: 'etc/release', type: 'symlink', linkname: '/etc/os-release' },
      { name: 'var/' },
      { name: 'var/cache/' },
      { name: 'var/cache/app/' },
      { name: 'var/cache/app/.wh..wh..opq' },
      { name: 'var/cache/app/fresh', body: 'fresh cache\n' },
    ]),
    await tarOf([
      { name: 'etc/' },
      { name: 'etc/hostname', body: 'example-v2\n' },
      { name: 'usr/' },
      { name: 'usr/share/' },
      { name: 'usr/share/.wh.doc' },
    ]),
  ];
  const diffIds = layers.map((l) => `sha256:${sha256(l)}`);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: MTIME.toISOString(),
    config: { Cmd: ['/bin/greet'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [
      { created: MTIME.toISOString(), created_by: 'base: files, a hard link, symlinks' },
      { created: MTIME.toISOString(), created_by: 'whiteout a file, opaque var/cache/app' },
      { created: MTIME.toISOString(), created_by: 'whiteout a directory, change a file' },
    ],
  });
  // The archive in exactly the `docker save` format this project writes (Docker 20.10's), so
  // load → save of the example is byte-identical too.
  const scratch = mkdtempSync(join(tmpdir(), 'example-image-'));
  try {
    const files = new Map<string, string>();
    layers.forEach((l, i) => {
      const f = join(scratch, `layer-${i}.tar`);
      writeFileSync(f, l);
      files.set(diffIds[i] as string, f);
    });
    await writeDockerSave(out, [{ id: `sha256:${sha256(config)}`, configBytes: Buffer.from(config), refs: [{ repo: 'example', tag: '1' }], parent: null }], async (_chain, diffId) => files.get(diffId) as string);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`wrote ${out}: image example:1, ${layers.length} layers`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
