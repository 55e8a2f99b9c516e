/** End to end: the `cox` process against a ws gateway over the memory fake. */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startWsGateway, type WsGateway } from '../actors/ws-gateway.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';

const coxPath = fileURLToPath(new URL('./cox.ts', import.meta.url));
const deadUrl = 'ws://127.0.0.1:1';

let gw: WsGateway;
let memory: ReturnType<typeof createMemoryApi>;
let dir: string;

beforeAll(async () => {
  memory = createMemoryApi();
  gw = await startWsGateway({ ...memory, listen: { host: '127.0.0.1', port: 0 }, log: () => {} });
  dir = mkdtempSync(join(tmpdir(), 'cox-e2e-'));
});
afterAll(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, ['--import', 'tsx', coxPath, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  child.stdin?.end(input ?? '');
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** `cox --server <gateway> ...` */
const cox = (...args: string[]) => start(['--server', gw.url, ...args]).done;

const manifests = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
`;

describe('cox', () => {
  it('applies a multi-document file: created, then unchanged, then configured', async () => {
    const file = join(dir, 'app.yaml');
    writeFileSync(file, manifests);
    const first = await cox('apply', '-f', file);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toBe('deployment/web created\nconfigmap/cfg created\n');
    expect((await cox('apply', '-f', file)).stdout).toBe(
      'deployment/web unchanged\nconfigmap/cfg unchanged\n',
    );
    writeFileSync(file, manifests.replace('replicas: 2', 'replicas: 3'));
    expect((await cox('apply', '-f', file)).stdout).toBe(
      'deployment/web configured\nconfigmap/cfg unchanged\n',
    );
  });

  it('gets objects as tables and as name, json, yaml and wide', async () => {
    const table = await cox('get', 'deploy,cm');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /^NAME +READY +UP-TO-DATE +AVAILABLE +AGE\ndeployment\/web +0\/3 +0 +0 +\S+\n\nNAME +DATA +AGE\nconfigmap\/cfg +1 /,
    );

    expect((await cox('get', 'deployments,configmaps', '-o', 'name')).stdout).toBe(
      'deployment/web\nconfigmap/cfg\n',
    );

    const json = JSON.parse((await cox('get', 'cm', 'cfg', '-o', 'json')).stdout);
    expect(json).toMatchObject({ kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { greeting: 'hello' } });

    const yaml = parseYaml((await cox('get', 'configmaps', '-o', 'yaml')).stdout);
    expect(yaml.kind).toBe('List');
    expect(yaml.items.map((o: { metadata: { name: string } }) => o.metadata.name)).toEqual(['cfg']);

    const wide = await cox('get', 'deploy', '-o', 'wide', '-l', 'app=web');
    expect(wide.stdout.split('\n')[0].split(/\s+/)).toEqual([
      'NAME',
      'READY',
      'UP-TO-DATE',
      'AVAILABLE',
      'AGE',
      'CONTAINERS',
      'IMAGES',
      'SELECTOR',
    ]);
    expect(wide.stdout).toContain('nginx:1.27');

    const all = await cox('get', 'cm', '-A');
    expect(all.stdout.split('\n')[1].split(/\s+/).slice(0, 2)).toEqual(['default', 'cfg']);

    const none = await cox('get', 'pods');
    expect(none).toMatchObject({ code: 0, stdout: '', stderr: 'No resources found in default namespace.\n' });
  });

  it('prints one error line naming the object and field, and exits 1', async () => {
    const bad = await start(
      ['--server', gw.url, 'apply', '-f', '-'],
      {},
      manifests.replace('replicas: 2', 'replicas: -1').replace('name: cfg', 'name: cfg2'),
    ).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: deployment/web: spec.replicas: must be >= 0\n');
    expect(bad.stdout).toBe('configmap/cfg2 created\n');

    const missing = await cox('get', 'cm', 'nope');
    expect(missing).toMatchObject({ code: 1, stderr: 'error: configmap/nope: not found\n' });

    const kind = await cox('get', 'widgets');
    expect(kind.code).toBe(1);
    expect(kind.stderr).toMatch(/^error: unknown kind "widgets": use one of namespaces, /);

    const flag = await cox('get', 'pods', '--colour');
    expect(flag.code).toBe(1);
    expect(flag.stderr).toMatch(/^error: unknown option '--colour'/);

    const manifest = await start(['--server', gw.url, 'apply', '-f', '-'], {}, 'kind: Pod\nmetadata: {}\n')
      .done;
    expect(manifest).toMatchObject({
      code: 1,
      stderr: 'error: stdin: document 1: metadata.name: required\n',
    });
  });

  it('deletes by name and by file, reporting what is missing', async () => {
    const del = await cox('delete', 'configmap', 'cfg2', 'ghost', '--grace-period=0', '--cascade=foreground');
    expect(del.code).toBe(1);
    expect(del.stdout).toBe('configmap "cfg2" deleted\n');
    expect(del.stderr).toBe('error: configmap/ghost: not found\n');
    const file = join(dir, 'cfg.yaml');
    writeFileSync(file, manifests.split('---')[1]);
    expect(await cox('delete', '-f', file)).toMatchObject({ code: 0, stdout: 'configmap "cfg" deleted\n' });
    expect((await memory.objects.list('ConfigMap')).items).toEqual([]);
  });

  it('fails over from a dead first master, and finds masters from COX_SERVERS or the config file', async () => {
    const flag = await start(['--server', `${deadUrl},${gw.url}`, 'get', 'deploy', '-o', 'name']).done;
    expect(flag).toMatchObject({ code: 0, stdout: 'deployment/web\n' });

    const env = await start(['get', 'deploy', '-o', 'name'], { COX_SERVERS: `${deadUrl},${gw.url}` }).done;
    expect(env).toMatchObject({ code: 0, stdout: 'deployment/web\n' });

    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ servers: [deadUrl, gw.url] }));
    const fromFile = await start(['get', 'deploy', '-o', 'name'], { COX_CONFIG: config }).done;
    expect(fromFile).toMatchObject({ code: 0, stdout: 'deployment/web\n' });

    const nothing = await start(['get', 'pods']).done;
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^error: no masters known: pass --server/);

    const allDead = await start(['--server', deadUrl, 'get', 'pods']).done;
    expect(allDead.code).toBe(1);
    expect(allDead.stderr).toMatch(/^error: no master answered \(ws:\/\/127\.0\.0\.1:1: /);
  });

  it('prints cluster status', async () => {
    const r = await cox('cluster', 'status');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0].split(/\s+/)).toEqual([
      'ID',
      'ROLE',
      'TERM',
      'COMMIT',
      'APPLIED',
      'API',
      'WS',
    ]);
    expect(r.stdout.split('\n')[1]).toMatch(/^m1\* +leader +1 /);
  });

  it('get -w prints rows as objects change', async () => {
    const { child, done } = start(['--server', gw.url, 'get', 'cm', '-w']);
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    const waitFor = async (re: RegExp) => {
      const deadline = Date.now() + 10_000;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // w1 shows up either in the initial list or as a watch event: the same row either way.
    await memory.objects.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'w1' },
      data: { a: '1' },
    });
    await waitFor(/^NAME +DATA +AGE\nw1 +1 /);
    await memory.objects.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w2' }, data: {} });
    await waitFor(/\nw2 +0 /);
    child.kill('SIGTERM');
    await done;
  });
});
