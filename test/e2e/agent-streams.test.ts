/**
 * `cox logs`, `cox exec` and `cox top` through any of 3 real masters to a node agent with the
 * docker runtime: the real `cox` process, COX_SERVERS set to the masters' gateways. The agent
 * keeps one session per master, so each master alone reaches it. Needs Docker (CI starts it);
 * never skipped.
 */

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { type CoxRun, coxPath, runCoxProcess, waitFor } from '../fixtures/e2e.js';
import { MasterCluster } from '../multiprocess/master-cluster.js';

const node = `e2e-streams-${process.pid}`;
const memoryDir = join('/dev/shm', `cox-e2e-streams-${process.pid}`);
const docker = new Docker();
let cluster: MasterCluster;
let api: ApiClient;
let agent: NodeAgent;
let dir: string;

function wsUrls(ids = cluster.ids()): string {
  return ids.map((id) => `ws://${cluster.member(id).wsAddress}`).join(',');
}

/** The real `cox` against the masters' gateways (all of them, or `servers`). */
function cox(
  args: string[],
  opts: { servers?: string; input?: string; until?: (out: string) => boolean; timeoutMs?: number } = {},
): Promise<CoxRun> {
  const { servers, ...rest } = opts;
  return runCoxProcess(args, { ...rest, env: { COX_SERVERS: servers ?? wsUrls(), COX_HOME: dir } });
}

async function containersOfNode(): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${runtimeLabels.node}=${node}`] } });
}

describe('logs, exec and top through the masters to a docker node agent', () => {
  beforeAll(async () => {
    await docker.ping();
    dir = mkdtempSync(join(tmpdir(), 'cox-streams-e2e-'));
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
    agent = new NodeAgent({
      node,
      nodeIp: '127.0.0.1',
      api,
      runtime: new DockerRuntime({ node, docker }),
      dataDir: join(dir, 'agent'),
      memoryDir,
      podResyncMs: 300,
      restartBackoff: { backoffMsInitial: 300, backoffMsMax: 600, backoffResetAfterRunMs: 600_000 },
      masters: cluster.apiAddresses(),
      log: () => {},
    });
    await agent.start();
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'talker' },
      spec: {
        nodeName: node,
        restartPolicy: 'Always',
        containers: [
          {
            name: 'main',
            image: 'coxswain/busybox',
            // stderr first and apart: the engine orders lines of its two pipes by arrival.
            command: [
              'sh',
              '-c',
              'echo oops >&2; sleep 0.3; echo one; echo two; echo three; exec sleep 3600',
            ],
          },
        ],
      },
    });
    await waitFor('pod Running', async () => {
      const p = (await api.get({ kind: 'Pod', name: 'talker' })) as unknown as Pod;
      return p.status?.phase === 'Running' ? p : undefined;
    });
    // Every master has the agent's session (each is asked alone).
    for (const id of cluster.ids()) {
      await waitFor(`logs through ${id}`, async () => {
        const r = await cox(['logs', 'talker'], { servers: wsUrls([id]) });
        return r.code === 0 && r.stdout.includes('three') ? r : undefined;
      });
    }
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    api?.close();
    await cluster?.close();
    for (const c of await containersOfNode())
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    rmSync(memoryDir, { recursive: true, force: true });
  }, 60_000);

  it('prints the output, stdout and stderr apart, and the last line with --tail 1', async () => {
    const all = await cox(['logs', 'talker']);
    expect(all).toMatchObject({ code: 0, stdout: 'one\ntwo\nthree\n' });
    expect(all.stderr).toBe('oops\n');
    const tail = await cox(['logs', '--tail', '1', 'talker']);
    expect(tail.stdout).toBe('three\n');
    const stamped = await cox(['logs', '--timestamps', '--tail', '1', 'talker']);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z three\n$/);
  }, 30_000);

  it('picks the container with -c and the run before the current one with --previous', async () => {
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'twins' },
      spec: {
        nodeName: node,
        restartPolicy: 'Always',
        volumes: [{ name: 'state', emptyDir: {} }],
        containers: [
          {
            name: 'steady',
            image: 'coxswain/busybox',
            command: ['sh', '-c', 'echo steady; exec sleep 3600'],
          },
          {
            name: 'flaky',
            image: 'coxswain/busybox',
            // Its first run fails; the second stays up.
            command: [
              'sh',
              '-c',
              'n=$(($(cat /state/n 2>/dev/null || echo 0) + 1)); echo $n > /state/n; echo run $n; [ $n -gt 1 ] && exec sleep 3600; exit 1',
            ],
            volumeMounts: [{ name: 'state', mountPath: '/state' }],
          },
        ],
      },
    });
    await waitFor('flaky running again', async () => {
      const s = ((await api.get({ kind: 'Pod', name: 'twins' })) as unknown as Pod).status?.containerStatuses;
      const flaky = s?.find((c) => c.name === 'flaky');
      return flaky?.restartCount === 1 && flaky.state?.running !== undefined ? true : undefined;
    });
    expect(await cox(['logs', 'twins'])).toMatchObject({ code: 0, stdout: 'steady\n' });
    expect(await cox(['logs', 'twins', '-c', 'flaky'])).toMatchObject({ code: 0, stdout: 'run 2\n' });
    expect(await cox(['logs', '--previous', 'twins', '-c', 'flaky'])).toMatchObject({
      code: 0,
      stdout: 'run 1\n',
    });
    const none = await cox(['logs', '-p', 'twins', '-c', 'steady']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /^error: pod [\w-]+: container "steady" has no previous terminated run on node e2e-streams-\d+\n$/,
    );
    await api.delete({ kind: 'Pod', name: 'twins' }, { gracePeriodSeconds: 0 });
  }, 40_000);

  it('reaches the agent through a master that is not the first of its list', async () => {
    const r = await cox(['logs', '--tail', '2', 'talker'], { servers: wsUrls(['m3']) });
    expect(r).toMatchObject({ code: 0, stdout: 'two\nthree\n' });
  }, 30_000);

  it('follows new output with -f', async () => {
    const following = cox(['logs', '-f', 'talker'], { until: (out) => out.includes('four\n') });
    await new Promise((r) => setTimeout(r, 1_500));
    // Written to the container's own stdout, so it enters the log.
    const w = await cox(['exec', 'talker', '--', 'sh', '-c', 'echo four > /proc/1/fd/1']);
    expect(w.code).toBe(0);
    const r = await following;
    expect(r.stdout).toBe('one\ntwo\nthree\nfour\n');
  }, 30_000);

  it('runs a command with exec: its output, and its exit code as cox exit code', async () => {
    const r = await cox(['exec', 'talker', '--', 'sh', '-c', 'echo hi; echo err >&2; exit 3']);
    expect(r).toMatchObject({ code: 3, stdout: 'hi\n', stderr: 'err\n' });
  }, 30_000);

  it('feeds stdin with exec -i', async () => {
    const r = await cox(['exec', '-i', 'talker', '--', 'sh', '-c', 'cat; echo done'], {
      input: 'piped line\n',
    });
    expect(r).toMatchObject({ code: 0, stdout: 'piped line\ndone\n' });
  }, 30_000);

  it('exec -it gives the command a terminal of the size of cox’s, resized when cox’s terminal is', async () => {
    // script(1) runs cox on a pseudo-terminal of 40x100; `stty -F` on that terminal later
    // resizes it, which sends cox SIGWINCH, as resizing a terminal window does.
    const ttyPath = join(dir, 'exec-tty');
    const loop = 'while :; do stty size; sleep 0.2; done';
    const inner = `tty > ${ttyPath}; stty rows 40 cols 100; exec ${process.execPath} --import tsx ${coxPath} exec -it talker -- sh -c '${loop}'`;
    const child = spawn('script', ['-qfec', inner, '/dev/null'], {
      env: { ...process.env, COX_SERVERS: wsUrls(), COX_HOME: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(
        'the initial size in the container',
        async () => (out.includes('40 100') ? true : undefined),
        40_000,
      );
      const tty = (await readFile(ttyPath, 'utf8')).trim();
      expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
      await new Promise<void>((resolve, reject) =>
        execFile('stty', ['-F', tty, 'rows', '50', 'cols', '120'], (err) => (err ? reject(err) : resolve())),
      );
      await waitFor(
        'the new size in the container',
        async () => (out.includes('50 120') ? true : undefined),
        20_000,
      );
      // Ctrl-C goes through cox's raw terminal to the command's terminal: sh dies of SIGINT.
      child.stdin.write('\x03');
      expect(await exited).toBe(130);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- what cox showed ---\n${JSON.stringify(out)}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(out.indexOf('40 100')).toBeLessThan(out.indexOf('50 120'));
  }, 90_000);

  it('fails in one line for a missing pod or container', async () => {
    const missing = await cox(['logs', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: .*nope.*not found\n$/);
    const badContainer = await cox(['exec', 'talker', '-c', 'other', '--', 'true']);
    expect(badContainer.code).toBe(1);
    expect(badContainer.stderr).toMatch(/^error: .*container "other".*\n$/);
  }, 30_000);

  it('shows the pod with top pods and the node with top nodes', async () => {
    const pods = await cox(['top', 'pods']);
    expect(pods.code).toBe(0);
    expect(pods.stdout).toMatch(/^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\ntalker\s+\d+m\s+\d+Mi\n$/);
    const nodes = await cox(['top', 'nodes']);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout).toMatch(new RegExp(`\\n${node}\\s+\\d+m\\s+\\d+%\\s+\\d+Mi\\s+\\d+%\\n`));
  }, 30_000);

  it("lists the agent's node with kubectl's wide columns", async () => {
    const r = await cox(['get', 'nodes', node, '-o', 'wide']);
    expect(r.code).toBe(0);
    const [header, row] = r.stdout.trimEnd().split('\n');
    expect(header.split(/\s{2,}/)).toEqual([
      'NAME',
      'STATUS',
      'ROLES',
      'AGE',
      'VERSION',
      'INTERNAL-IP',
      'EXTERNAL-IP',
      'OS-IMAGE',
      'KERNEL-VERSION',
      'CONTAINER-RUNTIME',
    ]);
    const cells = row.split(/\s{2,}/);
    expect(cells.slice(0, 3)).toEqual([node, 'Ready', '<none>']);
    expect(cells[4]).toMatch(/^v\d+\.\d+\.\d+/);
    expect(cells.slice(5, 7)).toEqual(['127.0.0.1', '<none>']);
    expect(cells[8]).toBe(release());
    const engine = (await docker.version()).Version;
    expect(cells[9]).toBe(`docker://${engine}`);
  }, 30_000);

  // Last: it kills a master.
  it('keeps a follow through one master running while another master dies', async () => {
    const following = cox(['logs', '-f', '--tail', '0', 'talker'], {
      servers: wsUrls(['m2']),
      until: (out) => out.includes('five\n'),
    });
    await new Promise((r) => setTimeout(r, 1_500));
    await cluster.kill('m1');
    const w = await cox(['exec', 'talker', '--', 'sh', '-c', 'echo five > /proc/1/fd/1'], {
      servers: wsUrls(['m3']),
    });
    expect(w.code).toBe(0);
    expect((await following).stdout).toBe('five\n');
  }, 30_000);
});
