/**
 * The `cox` CLI against a real local cluster: `cox up` starts 3 master processes, the client
 * verbs work through the WebSocket gateways, a `get -w` keeps streaming across a leader
 * `kill -9`, and `cox down` stops exactly those processes.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coxBin, coxRunner } from '../fixtures/cox-process.js';

const bin = coxBin;
const home = mkdtempSync(join(tmpdir(), 'cox-up-'));
// A base port away from the default (7100) and from other suites' random ports.
const basePort = 17_000 + (process.pid % 400) * 5;
const env = { ...process.env, COX_HOME: home, COX_CONFIG: join(home, 'config.json') };

const cox = coxRunner(env);

function masterPid(id: string): number {
  return (JSON.parse(readFileSync(join(home, 'local', id, 'master.json'), 'utf8')) as { pid: number }).pid;
}

/** Running (a zombie left for a non-reaping init counts as stopped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const manifest = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: shop}}
data: {mode: fast}
`;

describe('cox up / apply / get / down on real master processes', () => {
  const pids: number[] = [];
  beforeAll(async () => {
    const r = await cox(['up', '--base-port', String(basePort)], undefined, 90_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cluster up: 3 masters, leader m[123]/);
    for (const id of ['m1', 'm2', 'm3']) pids.push(masterPid(id));
  }, 120_000);

  afterAll(async () => {
    await cox(['down', '--purge']);
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  it('applies, reads, streams across a leader kill, and rejects bad input with one line', async () => {
    const file = join(home, 'shop.yaml');
    writeFileSync(file, manifest);
    let r = await cox(['apply', '-f', file]);
    expect(r.stdout).toBe('namespace/shop created\nconfigmap/settings created\n');
    r = await cox(['apply', '-f', '-'], manifest);
    expect(r.stdout).toBe('namespace/shop unchanged\nconfigmap/settings unchanged\n');
    r = await cox(['get', 'cm', 'settings', '-n', 'shop', '-o', 'json']);
    const obj = JSON.parse(r.stdout) as { metadata: { resourceVersion: string; uid: string } };
    expect(obj.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);

    // A watch keeps streaming while the leader is killed.
    const watch = spawn(process.execPath, [bin, 'get', 'cm', '-n', 'shop', '-w', '-o', 'name'], { env });
    let watched = '';
    watch.stdout.on('data', (d) => {
      watched += d;
    });
    try {
      await waitFor(() => watched.includes('configmap/settings'), 10_000);
      const status = await cox(['cluster', 'status']);
      const leader = /^(m\d)\*/m.exec(status.stdout)?.[1];
      expect(leader).toBeDefined();
      process.kill(masterPid(leader as string), 'SIGKILL');
      r = await cox(['apply', '-f', '-'], manifest.replace('name: settings', 'name: after-kill'));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('configmap/after-kill created');
      await waitFor(() => watched.includes('configmap/after-kill'), 20_000);
    } finally {
      watch.kill('SIGTERM');
    }

    r = await cox(['get', 'cm', '-n', 'shop', '-l', 'app=shop', '-o', 'name']);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['configmap/after-kill', 'configmap/settings']);
    r = await cox(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "Bad_Name"}\n');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: .*metadata\.name/);

    // `up` again restarts only the killed master, over its data.
    r = await cox(['up', '--base-port', String(basePort)], undefined, 90_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/started m\d\)/);
    r = await cox(['cluster', 'status']);
    expect(r.stdout).not.toContain('unreachable');
  }, 120_000);

  it('down stops every master it started', async () => {
    const now = ['m1', 'm2', 'm3'].map(masterPid);
    const r = await cox(['down']);
    expect(r.stdout).toContain('stopped m1, m2, m3');
    for (const pid of now) expect(alive(pid)).toBe(false);
  }, 30_000);
});

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
