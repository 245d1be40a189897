/**
 * Optional benchmark 4 (`--docker`): `docker load -i edge.tar` into an empty store of a private
 * dockerd (Debian's docker.io 20.10, overlay2 driver, its own data root under <base>/docker) vs our
 * load of the same archive into a fresh data root, interleaved. The image is removed with
 * `docker rmi` at the end of each round, followed by a 35 s pause (no-journal ext4 recently-deleted
 * inode penalty). The dockerd (and the containerd it starts) is stopped by PID at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore, loadImages } from '../src/image/index.js';
import { headline, onAbort, sampleLine, sh, sleep, table, timed, type Options, type Series } from './harness.js';
import { edgeArchive } from './images.js';

function dockerd(): string | null {
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (existsSync(p)) return p;
  return null;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/** utime/stime (ms) of a live process. */
function procCpu(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, and cutime, cstime: 20.10 extracts layers in re-exec'd `docker-untar` children.
    return { user: (Number(f[11]) + Number(f[13])) * 10, sys: (Number(f[12]) + Number(f[14])) * 10 };
  } catch {
    return { user: 0, sys: 0 };
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopPid(pid: number, what: string, log: (l: string) => void): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 150 && alive(pid); i++) await sleep(200);
  if (alive(pid)) {
    log(`docker: ${what} ${pid} ignored SIGTERM for 30 s; SIGKILL`);
    process.kill(pid, 'SIGKILL');
  }
}

export async function dockerBench(opts: Options): Promise<string> {
  const bin = dockerd();
  const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  if (bin === null) {
    return '## 4. docker load (optional)\n\nSkipped: `dockerd` is not installed (`apt-get install --no-install-recommends docker.io runc containerd`).\n';
  }
  const archive = edgeArchive();
  const root = join(opts.base, 'docker');
  const run = join(opts.base, 'dr'); // exec-root, pidfile and socket: removed with the work dir
  const sock = `${run}.sock`;
  mkdirSync(root, { recursive: true });
  const logFd = openSync(join(opts.base, 'dockerd.log'), 'a');
  const d = spawn(bin, [
    '--storage-driver', 'overlay2', '--data-root', join(root, 'data'), '--exec-root', run, '--pidfile', `${run}.pid`,
    '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip-masq=false',
  ], { detached: true, stdio: ['ignore', logFd, logFd], cwd: '/' });
  const pid = d.pid!;
  d.unref();
  const dropAbort = onAbort(() => { if (alive(pid)) process.kill(pid, 'SIGTERM'); });
  const docker = (args: string): string => sh(`${cli} -H unix://${sock} ${args}`);
  let containerd: number[] = [];
  try {
    let up = false;
    for (let i = 0; i < 150 && !up; i++) {
      await sleep(200);
      up = spawnSync(cli, ['-H', `unix://${sock}`, 'info'], { stdio: 'ignore' }).status === 0;
      if (!alive(pid)) break;
    }
    if (!up) throw new Error(`bench: dockerd did not come up (see ${join(opts.base, 'dockerd.log')})`);
    containerd = childrenOf(pid);
    const version = docker("version --format '{{.Server.Version}}'").trim();
    const driver = docker("info --format '{{.Driver}}'").trim();

    type Impl = { name: string; what: string; peer: boolean; run: (round: number) => Promise<void> | void };
    const impls: Impl[] = [
      {
        name: 'ours load', what: '`ImageStore.open` + `loadImages(edge.tar)`, fresh data root', peer: false,
        run: async (round) => {
          const dataRoot = join(root, `ours-r${round}`);
          mkdirSync(dataRoot, { recursive: true });
          await loadImages(await ImageStore.open(dataRoot), archive);
        },
      },
      {
        name: 'docker load', what: `\`docker load -i edge.tar\` (dockerd ${version}, ${driver}), empty store`, peer: true,
        run: () => {
          const pids = [pid, ...containerd];
          const c0 = pids.map(procCpu);
          docker(`load -q -i '${archive}' >/dev/null`);
          const c1 = pids.map(procCpu);
          daemon = c1.reduce((a, c, i) => ({ user: a.user + c.user - c0[i]!.user, sys: a.sys + c.sys - c0[i]!.sys }), { user: 0, sys: 0 });
        },
      },
    ];
    let daemon = { user: 0, sys: 0 };
    const series: Series[] = impls.map((i) => ({ name: i.name, what: i.what, peer: i.peer, samples: [] }));
    for (let round = 0; round < opts.rounds; round++) {
      opts.log(`docker: round ${round + 1}/${opts.rounds}`);
      const order = impls.map((_, i) => (i + round) % impls.length);
      for (const k of order) {
        daemon = { user: 0, sys: 0 };
        const s = await timed(opts, () => impls[k]!.run(round));
        s.userMs += daemon.user;
        s.sysMs += daemon.sys;
        series[k]!.samples.push(s);
        opts.log(sampleLine(impls[k]!.name, s));
      }
      docker('rmi -f edge:1 >/dev/null');
      docker('image prune -af >/dev/null');
      if (round + 1 < opts.rounds) await sleep(opts.quick ? 1000 : 35_000);
    }
    headline(opts, 'load edge.tar', series, 'ours load', 'docker load');
    return [
      '## 4. `docker load` vs ours (optional, `--docker`)',
      '',
      `A private dockerd ${version} (storage driver ${driver}, data root on the same fs) loads edge.tar into an empty store; `,
      'the image is removed after each round, then a 35 s pause. Docker\'s CPU = the `docker` CLI plus the user+sys time dockerd and its containerd',
      'accumulated during the load, including their reaped children (dockerd extracts layers in re-exec\'d `docker-untar` processes; from /proc/PID/stat).',
      '',
      table(series, 'docker load'),
      '',
    ].join('\n');
  } finally {
    dropAbort();
    await stopPid(pid, 'dockerd', opts.log);
    for (const c of containerd) await stopPid(c, 'containerd', opts.log);
  }
}
