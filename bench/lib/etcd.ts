/**
 * A 3-member etcd cluster (Debian's `etcd-server`) on loopback, the reference the benches
 * measure Coxswain against: install it when missing (as root), start it in a temp dir with a
 * log per member, wait until it takes writes, find its leader, stop it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  freeLoopbackPorts,
  sleep,
  trackChild,
  untrackDir,
  waitForExit,
} from '../../test/multiprocess/cluster.js';

/** How long the etcd members may take to form a cluster. */
const etcdStartTimeoutMs = 30_000;

export interface EtcdCluster {
  dir: string;
  procs: ChildProcess[];
  clientUrls: string[];
}

function hasEtcd(): boolean {
  return spawnSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure the `etcd` binary exists (installing Debian's etcd-server as root). Returns why
 * not, or undefined.
 */
export function ensureEtcd(progress: (msg: string) => void): string | undefined {
  if (hasEtcd()) return undefined;
  if (process.getuid?.() !== 0)
    return 'etcd is not installed and this is not root (apt-get install etcd-server)';
  const apt = (args: string[]): boolean => {
    progress(`apt-get ${args.join(' ')}`);
    const r = spawnSync('apt-get', args, {
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    return r.status === 0;
  };
  if (!apt(['install', '-y', 'etcd-server'])) {
    if (!apt(['update']) || !apt(['install', '-y', 'etcd-server']))
      return 'apt-get install etcd-server failed';
  }
  return hasEtcd() ? undefined : 'etcd-server installed but no etcd binary on PATH';
}

/** Starts 3 members in a fresh temp dir and resolves once a put succeeds. */
export async function startEtcd(
  progress: (msg: string) => void,
  dirPrefix = 'cox-bench-etcd-',
): Promise<EtcdCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  const ports = await freeLoopbackPorts(6);
  const names = ['e1', 'e2', 'e3'];
  const peerUrls = names.map((_, i) => `http://127.0.0.1:${ports[2 * i]}`);
  const clientUrls = names.map((_, i) => `http://127.0.0.1:${ports[2 * i + 1]}`);
  const initialCluster = names.map((n, i) => `${n}=${peerUrls[i]}`).join(',');
  const etcd: EtcdCluster = { dir, procs: [], clientUrls };
  try {
    for (const [i, name] of names.entries()) {
      const logFd = fs.openSync(path.join(dir, `${name}.log`), 'a');
      const proc = spawn(
        'etcd',
        [
          ...['--name', name, '--data-dir', path.join(dir, name)],
          ...['--listen-client-urls', clientUrls[i], '--advertise-client-urls', clientUrls[i]],
          ...['--listen-peer-urls', peerUrls[i], '--initial-advertise-peer-urls', peerUrls[i]],
          ...['--initial-cluster', initialCluster, '--initial-cluster-state', 'new'],
          ...[
            '--initial-cluster-token',
            `cox-bench-${process.pid}`,
            '--logger',
            'zap',
            '--log-level',
            'warn',
          ],
        ],
        { stdio: ['ignore', logFd, logFd] },
      );
      fs.closeSync(logFd);
      proc.on('error', (err) => progress(`etcd ${name}: ${err.message}`));
      trackChild(proc, dir);
      etcd.procs.push(proc);
    }
    const deadline = Date.now() + etcdStartTimeoutMs;
    const probe = new Etcd3({ hosts: clientUrls });
    try {
      for (;;) {
        if (etcd.procs.some((p) => p.exitCode !== null || p.pid === undefined))
          throw new Error(`an etcd member exited; logs in ${dir}`);
        try {
          await probe.put('cox-bench-ready').value('1').exec();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`etcd did not become ready: ${String(err)}`);
          await sleep(200);
        }
      }
    } finally {
      probe.close();
    }
    return etcd;
  } catch (err) {
    await stopEtcd(etcd);
    throw err;
  }
}

/** SIGTERM (then SIGKILL) every member this module started, and removes the temp dir. */
export async function stopEtcd(etcd: EtcdCluster): Promise<void> {
  for (const p of etcd.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  for (const p of etcd.procs) {
    if (!(await waitForExit(p, 5_000))) {
      p.kill('SIGKILL');
      await waitForExit(p, 5_000);
    }
  }
  fs.rmSync(etcd.dir, { recursive: true, force: true });
  untrackDir(etcd.dir);
}

/** The index of the member that is the leader. */
export async function etcdLeader(urls: string[]): Promise<number> {
  for (const [i, url] of urls.entries()) {
    const c = new Etcd3({ hosts: url });
    try {
      const st = await c.maintenance.status();
      if (st.leader === st.header.member_id) return i;
    } finally {
      c.close();
    }
  }
  throw new Error('no etcd member reports itself as leader');
}
