/**
 * The main job, as the README's quickstart runs it: `cox up --demo` on real processes and a
 * real Docker engine (3 masters, 2 agents, kernel proxy rules, cluster DNS). The web frontend
 * answers through its NodePort on both node IPs, reaching its backend by service name, and
 * keeps answering while the backend's pods are deleted and replaced one after the other.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CoxRun, coxRunner } from '../fixtures/cox-process.js';

const home = mkdtempSync(join(tmpdir(), 'cox-demo-'));
// Away from the default (7100), from cox-up.test.ts (17,000-19,000) and other suites' ports.
const basePort = 21_000 + (process.pid % 400) * 5;
const env = { ...process.env, COX_HOME: home, COX_CONFIG: join(home, 'config.json') };

const cox = coxRunner(env);

function pidsUnder(dir: string, file: (id: string) => string): number[] {
  const pids: number[] = [];
  for (const id of ['m1', 'm2', 'm3', 'agents/n1', 'agents/n2']) {
    try {
      pids.push((JSON.parse(readFileSync(join(dir, id, file(id)), 'utf8')) as { pid: number }).pid);
    } catch {
      // not started
    }
  }
  return pids;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const body = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${body}`);
  return body;
}

interface PodLite {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

async function readyBackends(): Promise<string[]> {
  const r = await cox(['get', 'pods', '-n', 'demo', '-l', 'app=backend', '-o', 'json']);
  if (r.code !== 0) return [];
  const list = JSON.parse(r.stdout) as { items: PodLite[] };
  return list.items
    .filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((p) => p.metadata.name)
    .sort();
}

describe('npm run up: the demo app on 3 masters and 2 docker agents', () => {
  let up: CoxRun;
  let nodePort = 0;
  const dataRoot = join(home, 'local');

  beforeAll(async () => {
    up = await cox(
      ['up', '--demo', '--runtime', 'docker', '--base-port', String(basePort)],
      undefined,
      300_000,
    );
    nodePort = Number(/curl http:\/\/127\.0\.1\.1:(\d+)\//.exec(up.stdout)?.[1] ?? 0);
  }, 320_000);

  afterAll(async () => {
    const pids = pidsUnder(dataRoot, (id) => (id.startsWith('agents/') ? 'agent.json' : 'master.json'));
    await cox(['down', '--purge'], undefined, 60_000).catch(() => undefined);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(home, { recursive: true, force: true });
  }, 90_000);

  it('comes up, says which runtime, and prints the web answering through the backend by name', () => {
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/cluster up: 3 masters/);
    expect(up.stdout).toMatch(/docker/);
    expect(up.stdout).toMatch(/backend pod: backend-\S+ \(via http:\/\/backend:8080\/\)/);
    expect(nodePort).toBeGreaterThanOrEqual(30_000);
  });

  it('answers on every node IP, and keeps answering while backend pods are replaced', async () => {
    for (const ip of ['127.0.1.1', '127.0.1.2']) {
      const body = await get(`http://${ip}:${nodePort}/`);
      expect(body).toMatch(/web pod: +web-/);
      expect(body).toMatch(/backend pod: backend-\S+ \(via http:\/\/backend:8080\/\)/);
    }

    // Requests go on, one at a time, while each backend pod in turn is deleted and replaced.
    const answers: string[] = [];
    const failures: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const body = await get(`http://127.0.1.1:${nodePort}/`);
          if (/backend pod: /.test(body)) answers.push(body);
          else failures.push(body);
        } catch (err) {
          failures.push(String(err));
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const before = await waitFor(
      'two ready backends',
      async () => ((await readyBackends()).length === 2 ? readyBackends() : undefined),
      60_000,
    );
    try {
      for (const victim of before) {
        const r = await cox(['delete', 'pod', victim, '-n', 'demo']);
        expect(r.code, r.stderr).toBe(0);
        await waitFor(
          `a replacement for ${victim} ready`,
          async () => {
            const now = await readyBackends();
            return now.length === 2 && !now.includes(victim) ? now : undefined;
          },
          120_000,
        );
      }
    } finally {
      polling = false;
      await poller;
    }
    const after = await readyBackends();
    expect(after.some((name) => before.includes(name))).toBe(false);
    expect(failures).toEqual([]);
    // The new backends answered through the service.
    expect(answers.some((a) => after.some((name) => a.includes(`backend pod: ${name}`)))).toBe(true);
  }, 300_000);
});
