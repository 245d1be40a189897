/**
 * `edge.container-changes.sh` (the commands Docker ran inside a container of edge:1) replayed as
 * `overlay2 fs` commands — the userspace engine, no mount — on a container of edge:1 loaded by
 * this project. The resulting `diff` must equal Docker's `docker diff`, the committed layer must
 * equal the layer `docker commit` made (path, type, mode, owner, link target, size), and the
 * committed image's merged view (mounted by the kernel) must equal Docker's. The same answers are
 * what the kernel path gives (test/image/real-images.test.ts), so engine and kernel agree.
 *
 * One line of the script is not replayed: `chmod 0640 /etc/hostname`. In a running Docker
 * container /etc/hostname is a bind mount of a runtime file, so the chmod never reaches the
 * container's layer (Docker's diff does not list it); not running it is the faithful equivalent.
 * Deviations compared without the field: mtimes of the paths the script touched (they are the
 * time the script ran, here versus on Docker's machine) and the root line's mtime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { realImageArchive, realImagesDir } from '../helpers/realimages.js';
import { ImageStore, chainIds } from '../../src/image/index.js';

const BIN = join(process.cwd(), 'bin', 'overlay2.js');

function ov2(root: string, args: string[], input?: string | Buffer): string {
  const r = spawnSync(process.execPath, [BIN, '--root', root, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `overlay2 ${args.join(' ')} failed (${String(r.status)}): ${r.stderr}`);
  return r.stdout;
}

const expected = (name: string): string[] => readFileSync(join(realImagesDir(), name), 'utf8').split('\n').filter((l) => l !== '');
const pathOf = (l: string): string => l.split(' ')[1] ?? '';
const dropMtime = (l: string): string => l.replace(/ mtime=-?\d+/, '');

/** The script's commands as fs ops on container `c` (see the header for the one not replayed). */
function replay(root: string, c: string): void {
  const fs = (args: string[], input?: string): string => ov2(root, ['fs', c, ...args], input);
  fs(['put', '/root/hello.txt'], 'hello\n'); //                     echo hello > /root/hello.txt
  fs(['put', '--append', '/etc/bash.bashrc'], '# edited\n'); //     echo "# edited" >> /etc/bash.bashrc
  fs(['rm', '/etc/debian_version']); //                             rm /etc/debian_version
  fs(['rm', '-r', '-f', '/usr/share/doc']); //                      rm -rf /usr/share/doc
  fs(['rm', '-r', '-f', '/opt/tree-renamed']); //                   rm -rf /opt/tree-renamed &&
  fs(['mkdir', '/opt/tree-renamed']); //                            mkdir /opt/tree-renamed &&
  fs(['put', '/opt/tree-renamed/only'], 'fresh\n'); //              echo fresh > /opt/tree-renamed/only
  fs(['chown', '1234:1234', '/opt/empty/empty-file']); //          chown 1234:1234 /opt/empty/empty-file
  fs(['mkdir', '-p', '/app/src/lib']); //                           mkdir -p /app/src/lib &&
  fs(['put', '/app/src/lib/x.js'], 'x\n'); //                       echo 'x' > /app/src/lib/x.js
  fs(['ln', '-s', '../etc/os-release', '/app/os-release']); //      ln -s ../etc/os-release /app/os-release
  fs(['ln', '/root/hello.txt', '/root/hello-hardlink.txt']); //     ln /root/hello.txt /root/hello-hardlink.txt
  fs(['mkfifo', '/app/pipe']); //                                   mkfifo /app/pipe
  fs(['put', '--offset', '5', '/srv/data/big.bin'], 'Y'); //        printf 'Y' | dd … seek=5 conv=notrunc
  fs(['mv', '/opt/links', '/opt/links-moved']); //                  mv /opt/links /opt/links-moved (EXDEV → copy)
}

test('edge.container-changes.sh through `overlay2 fs`: diff, committed layer and tree equal Docker\'s', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'python3')) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ov2(root, ['load', realImageArchive('edge')]);
  ov2(root, ['create', '--name', 'edge-engine', 'edge:1']);
  const mounts = (): string[] => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(root));
  const before = mounts();
  replay(root, 'edge-engine');
  assert.deepEqual(mounts(), before, 'the replay made no mount');

  const diff = ov2(root, ['diff', 'edge-engine']).split('\n').filter((l) => l !== '').sort();
  const docker = expected('edge.docker-diff.txt').sort();
  assert.deepEqual(diff, docker);

  const id = ov2(root, ['commit', 'edge-engine', 'edge-engine:1']).trim();
  assert.match(id, /^sha256:/);
  // The committed layer is the last one of the new image: save it and read that layer's tar.
  const saved = join(dir, 'committed.tar');
  ov2(root, ['save', 'edge-engine:1', '-o', saved]);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', saved, 'manifest.json']).toString()) as Array<{ Layers: string[] }>;
  const top = manifest[0]?.Layers.at(-1) as string;
  execFileSync('tar', ['-xf', saved, '-C', dir, top]);
  const dump = execFileSync('python3', [join(realImagesDir(), 'dump-layer-tar.py'), join(dir, top)]).toString().split('\n').filter((l) => l !== '');
  const fields = (l: string): string => {
    const m = /^(\S+) (\S+) (\S+) (\d+:\d+)\([^)]*\) size=(\d+) mtime=\S+( -> \S+)?/.exec(l);
    return m === null ? `unparsed: ${l}` : [m[1], m[2], m[3], m[4], m[5], m[6] ?? ''].join(' ');
  };
  assert.deepEqual(dump.map(fields), expected('edge.commit-layer.txt').map(fields));

  // The committed image (its top layer mounted read-only by the kernel) equals Docker's tree.
  const store = await ImageStore.open(root);
  const imageId = await store.resolveImage('edge-engine:1');
  const topLayer = await store.layer(chainIds(ImageStore.diffIdsOf((await store.config(imageId)).config)).at(-1) as string);
  const merged = await store.driver.get(topLayer.cacheId);
  try {
    const touched = new Set<string>(['/']);
    for (const l of docker) {
      let p = l.slice(2);
      while (p !== '' && p !== '/') {
        touched.add(p);
        p = p.slice(0, p.lastIndexOf('/')) || '/';
      }
    }
    const norm = (lines: string[]): string[] => lines.map((l) => (touched.has(pathOf(l)) ? dropMtime(l) : l));
    const a = norm(execFileSync('python3', [join(realImagesDir(), 'tree-manifest.py'), merged], { maxBuffer: 1 << 28 }).toString().split('\n').filter((l) => l !== ''));
    const b = norm(expected('edge-committed.expected-tree.txt'));
    const sa = new Set(a);
    const sb = new Set(b);
    assert.deepEqual(a, b, `ours only:\n${a.filter((l) => !sb.has(l)).slice(0, 10).join('\n')}\ndocker only:\n${b.filter((l) => !sa.has(l)).slice(0, 10).join('\n')}`);
  } finally {
    await store.driver.put(topLayer.cacheId);
  }
});
