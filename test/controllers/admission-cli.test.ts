/**
 * The real `cox` process against a WebSocket gateway in front of a follower of in-process
 * masters: admission refusals (namespace, LimitRange, quota) are one `error:` line naming the
 * object and the rule, with exit code 1.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWsGateway, type WsGateway } from '../../actors/ws-gateway.js';
import { type MemoryCluster, startMemoryCluster } from '../fixtures/master-cluster.js';

const coxPath = fileURLToPath(new URL('../../cli/cox.ts', import.meta.url));

let cluster: MemoryCluster;
let gw: WsGateway;
let dir: string;

beforeAll(async () => {
  cluster = await startMemoryCluster(3, { controllers: () => [] });
  const follower = await cluster.follower();
  gw = await startWsGateway({
    objects: follower.api,
    cluster: follower.api,
    listen: { host: '127.0.0.1', port: 0 },
    log: () => {},
  });
  dir = mkdtempSync(join(tmpdir(), 'cox-admission-'));
});
afterAll(async () => {
  await gw.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

function cox(
  input: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', coxPath, '--server', gw.url, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: dir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const podYaml = (name: string, ns: string, resources = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  containers:
    - name: app
      image: coxswain/busybox
${resources}`;

describe('cox shows admission refusals as one line', () => {
  it('namespace, LimitRange and quota refusals exit 1 with one error line', async () => {
    const missing = await cox(podYaml('p', 'nowhere'), 'apply', '-f', '-');
    expect(missing).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: pod/p: namespaces "nowhere" not found\n',
    });

    const setup = await cox(
      `apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: LimitRange
metadata: {name: lr1, namespace: team}
spec:
  limits:
    - type: Container
      max: {cpu: 500m}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: q1, namespace: team}
spec:
  hard: {requests.cpu: 600m, pods: '5'}
`,
      'apply',
      '-f',
      '-',
    );
    expect(setup).toMatchObject({ code: 0, stderr: '' });

    const tooBig = await cox(
      podYaml('big', 'team', '      resources:\n        limits: {cpu: "1"}\n'),
      'apply',
      '-f',
      '-',
    );
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toBe(
      'error: pod/big: spec.containers[0].resources.limits.cpu: maximum cpu usage per Container is 500m, but limit is 1 (LimitRange lr1); and 1 more\n',
    );

    const first = await cox(
      podYaml('a', 'team', '      resources:\n        requests: {cpu: 400m}\n'),
      'apply',
      '-f',
      '-',
    );
    expect(first).toMatchObject({ code: 0, stdout: 'pod/a created\n' });
    const over = await cox(
      podYaml('b', 'team', '      resources:\n        requests: {cpu: 300m}\n'),
      'apply',
      '-f',
      '-',
    );
    expect(over).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'error: pod/b: pods "b" is forbidden: exceeded quota: q1, requested: requests.cpu=300m, used: requests.cpu=400m, limited: requests.cpu=600m\n',
    });
    // A server-side dry run runs the same checks.
    const dry = await cox(
      podYaml('b', 'team', '      resources:\n        requests: {cpu: 300m}\n'),
      'apply',
      '-f',
      '-',
      '--dry-run',
    );
    expect(dry.code).toBe(1);
    expect(dry.stderr).toContain('exceeded quota: q1');
  });
});
