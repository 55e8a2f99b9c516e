/** `cox scale` and `cox rollout ...` through `runCox`, against the in-memory API fake. */

import { describe, expect, it } from 'vitest';
import type { ObjectApi } from '../actors/api.js';
import type { ApiObject, DaemonSet, Deployment, ReplicaSet, StatefulSet } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { type CliApi, runCox } from './main.js';
import {
  daemonSetRolloutState,
  deploymentRolloutState,
  parseTimeout,
  RolloutError,
  statefulSetRolloutState,
} from './rollout.js';

const nowMs = Date.parse('2026-03-01T12:00:00Z');

/** A CLI over a fresh memory API; `run` returns the exit code and what was printed. */
function cli() {
  const memory = createMemoryApi();
  const objects: ObjectApi = memory.objects;
  const api: CliApi = {
    create: (o, w) => objects.create(o, w),
    get: (k, g) => objects.get(k, g),
    list: (k, l) => objects.list(k, l),
    update: (o, w) => objects.update(o, w),
    updateStatus: (o, w) => objects.updateStatus(o, w),
    patch: (k, p, o) => objects.patch(k, p, o),
    delete: (k, d) => objects.delete(k, d),
    watch: (k, w) => objects.watch(k, w),
    clusterStatus: () => memory.cluster.status(),
    addMember: (m) => memory.cluster.addMember(m),
    removeMember: (id) => memory.cluster.removeMember(id),
    transferLeadership: (to) => memory.cluster.transferLeadership(to),
    close: () => {},
  };
  /** Starts `cox ARGS`; `printed()` is the stdout so far. */
  const start = (...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = runCox(['--server', 'ws://127.0.0.1:1', ...args], {
      env: {},
      homeDir: '/nonexistent',
      nowMs: () => nowMs,
      files: {
        listDir: () => undefined,
        readFile: () => {
          throw new Error('no files here');
        },
        readStdin: async () => '',
        join: (dir, name) => `${dir}/${name}`,
        readIfExists: () => undefined,
      },
      stdout: (s) => {
        stdout += s;
      },
      stderr: (s) => {
        stderr += s;
      },
      connect: () => api,
    });
    return {
      printed: () => stdout,
      done: code.then((c) => ({ code: c, stdout, stderr })),
    };
  };
  const run = (...args: string[]) => start(...args).done;
  return { api: objects, run, start };
}

const template = (img: string, extraLabels: Record<string, string> = {}) => ({
  metadata: { labels: { app: 'web', ...extraLabels } },
  spec: { containers: [{ name: 'app', image: img }] },
});

function deployment(img = 'v3'): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'default',
      annotations: { 'kubernetes.io/change-cause': 'v3 please' },
    },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: template(img) },
  };
}

/** A ReplicaSet of `d` at `revision` for image `img`. */
function replicaSet(d: ApiObject, img: string, revision: string, cause?: string): ReplicaSet {
  const hash = `h${img}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${hash}`,
      namespace: 'default',
      labels: { app: 'web', 'pod-template-hash': hash },
      annotations: {
        'deployment.kubernetes.io/revision': revision,
        ...(cause ? { 'kubernetes.io/change-cause': cause } : {}),
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: 'web',
          uid: d.metadata.uid ?? '',
          controller: true,
        },
      ],
    },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } },
      template: template(img, { 'pod-template-hash': hash }),
    },
  };
}

/** A Deployment at revision 3 (image v3) with ReplicaSets for revisions 1..3. */
async function withHistory(api: ObjectApi) {
  const d = await api.create(deployment());
  await api.create(replicaSet(d, 'v1', '1', 'first'));
  await api.create(replicaSet(d, 'v2', '2'));
  await api.create(replicaSet(d, 'v3', '3', 'v3 please'));
  return d;
}

describe('rollout status messages (kubectl’s)', () => {
  const d = (status: Deployment['status'], generation = 2): Deployment => ({
    ...deployment(),
    metadata: { ...deployment().metadata, generation },
    status,
  });

  it('deployment: observed, updated, old pending, available, done; the deadline is an error', () => {
    expect(deploymentRolloutState(d({ observedGeneration: 1 })).message).toBe(
      'Waiting for deployment spec update to be observed...\n',
    );
    expect(
      deploymentRolloutState(d({ observedGeneration: 2, updatedReplicas: 1, replicas: 4 })).message,
    ).toBe('Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...\n');
    expect(
      deploymentRolloutState(d({ observedGeneration: 2, updatedReplicas: 3, replicas: 4 })).message,
    ).toBe('Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...\n');
    const avail = deploymentRolloutState(
      d({ observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 1 }),
    );
    expect(avail).toEqual({
      message: 'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...\n',
      done: false,
    });
    expect(
      deploymentRolloutState(
        d({ observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 3 }),
      ),
    ).toEqual({ message: 'deployment "web" successfully rolled out\n', done: true });
    const stuck = d({
      observedGeneration: 2,
      conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
    });
    expect(() => deploymentRolloutState(stuck)).toThrow(
      new RolloutError('deployment "web" exceeded its progress deadline'),
    );
    const rev = { ...d({ observedGeneration: 2 }) };
    rev.metadata.annotations = { 'deployment.kubernetes.io/revision': '3' };
    expect(() => deploymentRolloutState(rev, 2n)).toThrow(
      'desired revision (2) is different from the running revision (3)',
    );
  });

  it('daemon set and stateful set from their standard status fields', () => {
    const ds = (status: Partial<NonNullable<DaemonSet['status']>>): DaemonSet => ({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', generation: 1 },
      spec: { selector: {}, template: template('x'), updateStrategy: { type: 'RollingUpdate' } },
      status: {
        currentNumberScheduled: 3,
        numberMisscheduled: 0,
        desiredNumberScheduled: 3,
        numberReady: 3,
        observedGeneration: 1,
        ...status,
      },
    });
    expect(daemonSetRolloutState(ds({ updatedNumberScheduled: 1 })).message).toBe(
      'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...\n',
    );
    expect(daemonSetRolloutState(ds({ updatedNumberScheduled: 3, numberAvailable: 2 })).message).toBe(
      'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...\n',
    );
    expect(daemonSetRolloutState(ds({ updatedNumberScheduled: 3, numberAvailable: 3 }))).toEqual({
      message: 'daemon set "agent" successfully rolled out\n',
      done: true,
    });
    const sts = (status: NonNullable<StatefulSet['status']>, partition?: number): StatefulSet => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db', generation: 1 },
      spec: {
        replicas: 3,
        selector: {},
        template: template('x'),
        updateStrategy: {
          type: 'RollingUpdate',
          ...(partition !== undefined ? { rollingUpdate: { partition } } : {}),
        },
      },
      status,
    });
    expect(
      statefulSetRolloutState(sts({ replicas: 3, observedGeneration: 1, readyReplicas: 1 })).message,
    ).toBe('Waiting for 2 pods to be ready...\n');
    const rolling = { replicas: 3, observedGeneration: 1, readyReplicas: 3, updatedReplicas: 1 };
    expect(
      statefulSetRolloutState(sts({ ...rolling, updateRevision: 'db-2', currentRevision: 'db-1' })).message,
    ).toBe('waiting for statefulset rolling update to complete 1 pods at revision db-2...\n');
    expect(
      statefulSetRolloutState(
        sts({
          ...rolling,
          updatedReplicas: 3,
          currentReplicas: 3,
          updateRevision: 'db-2',
          currentRevision: 'db-2',
        }),
      ),
    ).toEqual({ message: 'statefulset rolling update complete 3 pods at revision db-2...\n', done: true });
    expect(statefulSetRolloutState(sts(rolling, 1)).message).toBe(
      'Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...\n',
    );
  });

  it('parses --timeout durations', () => {
    expect(parseTimeout('90s')).toBe(90_000);
    expect(parseTimeout('1h30m')).toBe(5_400_000);
    expect(parseTimeout('500ms')).toBe(500);
    expect(parseTimeout('2')).toBe(2_000);
    expect(parseTimeout(undefined)).toBe(0);
    expect(() => parseTimeout('soon')).toThrow('--timeout: "soon" is not a duration like 30s, 5m or 1h');
  });
});

describe('cox scale', () => {
  it('sets replicas, honours --current-replicas, and rejects bad input in one line', async () => {
    const { api, run } = cli();
    await api.create(deployment());
    expect(await run('scale', 'deploy/web', '--replicas=5')).toEqual({
      code: 0,
      stdout: 'deployment/web scaled\n',
      stderr: '',
    });
    expect(((await api.get({ kind: 'Deployment', name: 'web' })) as Deployment).spec.replicas).toBe(5);
    expect(await run('scale', 'deployment', 'web', '--replicas', '2', '--current-replicas', '3')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: deployment/web: expected replicas to be 3, was 5\n',
    });
    expect((await run('scale', 'deploy/web', '--replicas=2', '--current-replicas=5')).code).toBe(0);
    expect(((await api.get({ kind: 'Deployment', name: 'web' })) as Deployment).spec.replicas).toBe(2);
    expect(await run('scale', 'deploy/web', '--replicas=-1')).toMatchObject({
      code: 1,
      stderr: 'error: --replicas: -1: must be >= 0\n',
    });
    expect(await run('scale', 'deploy/web', '--replicas=two')).toMatchObject({
      code: 1,
      stderr: 'error: --replicas: "two" must be an integer\n',
    });
    expect(await run('scale', 'svc/web', '--replicas=1')).toMatchObject({
      code: 1,
      stderr: 'error: scale: services are not supported (only deployments, replicasets, statefulsets)\n',
    });
    expect(await run('scale', 'deploy/nope', '--replicas=1')).toMatchObject({
      code: 1,
      stderr: 'error: deployment/nope: not found\n',
    });
    expect((await run('scale', 'deploy/web')).code).toBe(1);
  });

  it('scales ReplicaSets and StatefulSets', async () => {
    const { api, run } = cli();
    const d = await api.create(deployment());
    await api.create(replicaSet(d, 'v1', '1'));
    await api.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'db' } },
        template: { ...template('db'), metadata: { labels: { app: 'db' } } },
      },
    });
    expect(await run('scale', 'rs/web-hv1', 'sts/db', '--replicas=4')).toEqual({
      code: 0,
      stdout: 'replicaset/web-hv1 scaled\nstatefulset/db scaled\n',
      stderr: '',
    });
    expect(((await api.get({ kind: 'StatefulSet', name: 'db' })) as StatefulSet).spec.replicas).toBe(4);
  });
});

describe('cox rollout history and undo', () => {
  it('lists a deployment’s revisions from its ReplicaSets, and shows one', async () => {
    const { api, run } = cli();
    await withHistory(api);
    const list = await run('rollout', 'history', 'deploy/web');
    expect(list).toEqual({
      code: 0,
      stdout:
        'deployment/web\nREVISION   CHANGE-CAUSE\n1          first\n2          <none>\n3          v3 please\n',
      stderr: '',
    });
    const one = await run('rollout', 'history', 'deploy/web', '--revision=2');
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(
      [
        'deployment/web with revision #2',
        'Pod Template:',
        '  Labels:\tapp=web',
        '\tpod-template-hash=hv2',
        '  Annotations:\t<none>',
        '  Containers:',
        '   app:',
        '    Image:\tv2',
        '    Port:\t<none>',
        '    Environment:\t<none>',
        '    Mounts:\t<none>',
        '  Volumes:\t<none>',
        '',
      ].join('\n'),
    );
    expect(await run('rollout', 'history', 'deploy/web', '--revision=7')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: unable to find specified revision 7 in history\n',
    });
  });

  it('undo writes the previous revision’s template and annotations back; --to-revision picks one', async () => {
    const { api, run } = cli();
    await withHistory(api);
    expect(await run('rollout', 'undo', 'deploy/web')).toEqual({
      code: 0,
      stdout: 'deployment/web rolled back\n',
      stderr: '',
    });
    let d = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    expect(d.spec.template).toEqual(template('v2'));
    // Revision 2's ReplicaSet has no change-cause: the Deployment's is dropped, as kubectl does.
    expect(d.metadata.annotations?.['kubernetes.io/change-cause']).toBeUndefined();
    expect(await run('rollout', 'undo', 'deploy/web', '--to-revision=1')).toMatchObject({ code: 0 });
    d = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    expect(d.spec.template).toEqual(template('v1'));
    expect(d.metadata.annotations?.['kubernetes.io/change-cause']).toBe('first');
    expect(await run('rollout', 'undo', 'deploy/web', '--to-revision=1')).toEqual({
      code: 0,
      stdout: 'deployment/web skipped rollback (current template already matches revision 1)\n',
      stderr: '',
    });
    expect(await run('rollout', 'undo', 'deploy/web', '--to-revision=7')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: unable to find specified revision 7 in history\n',
    });
    expect(await run('rollout', 'undo', 'deploy/web', '--to-revision=x')).toMatchObject({
      code: 1,
      stderr: 'error: --revision: "x" must be a revision number\n',
    });
    await api.patch({ kind: 'Deployment', name: 'web' }, { spec: { paused: true } });
    expect((await run('rollout', 'undo', 'deploy/web')).stderr).toBe(
      "error: deployment/web: you cannot rollback a paused deployment; resume it first with 'cox rollout resume' and try again\n",
    );
  });

  it('a deployment with one revision has nothing to undo', async () => {
    const { api, run } = cli();
    const d = await api.create(deployment('v1'));
    await api.create(replicaSet(d, 'v1', '1'));
    expect(await run('rollout', 'undo', 'deploy/web')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: no rollout history found for deployment "web"\n',
    });
  });

  it('daemon sets and stateful sets: history and undo from their ControllerRevisions', async () => {
    const { api, run } = cli();
    const dsTemplate = (img: string) => ({
      metadata: { labels: { app: 'agent' } },
      spec: { containers: [{ name: 'agent', image: img }] },
    });
    const ds = await api.create({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: dsTemplate('a2') },
    });
    for (const [n, img] of [
      [1, 'a1'],
      [2, 'a2'],
    ] as const) {
      await api.create({
        apiVersion: 'apps/v1',
        kind: 'ControllerRevision',
        metadata: {
          name: `agent-${img}`,
          labels: { app: 'agent', 'controller-revision-hash': img },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'DaemonSet',
              name: 'agent',
              uid: ds.metadata.uid ?? '',
              controller: true,
            },
          ],
        },
        revision: n,
        data: { spec: { template: dsTemplate(img) } },
      });
    }
    expect((await run('rollout', 'history', 'ds/agent')).stdout).toBe(
      'daemonset/agent\nREVISION   CHANGE-CAUSE\n1          <none>\n2          <none>\n',
    );
    expect((await run('rollout', 'history', 'ds', 'agent', '--revision', '1')).stdout).toContain(
      '    Image:\ta1\n',
    );
    expect(await run('rollout', 'undo', 'daemonset/agent')).toMatchObject({
      code: 0,
      stdout: 'daemonset/agent rolled back\n',
    });
    const after = (await api.get({ kind: 'DaemonSet', name: 'agent' })) as DaemonSet;
    expect(after.spec.template).toEqual(dsTemplate('a1'));
    expect((await run('rollout', 'undo', 'ds/agent', '--to-revision=3')).stderr).toBe(
      'error: unable to find specified revision 3 in history\n',
    );
    expect((await run('rollout', 'history', 'sts/none')).stderr).toBe('error: statefulset/none: not found\n');
    expect((await run('rollout', 'history', 'svc/x')).stderr).toBe(
      'error: rollout history: services are not supported (only deployments, daemonsets, statefulsets)\n',
    );
  });
});

describe('cox rollout pause, resume, restart', () => {
  it('pauses and resumes deployments only, saying when nothing changed', async () => {
    const { api, run } = cli();
    await api.create(deployment());
    expect((await run('rollout', 'pause', 'deploy/web')).stdout).toBe('deployment/web paused\n');
    expect(((await api.get({ kind: 'Deployment', name: 'web' })) as Deployment).spec.paused).toBe(true);
    expect((await run('rollout', 'pause', 'deploy/web')).stdout).toBe('deployment/web already paused\n');
    expect((await run('rollout', 'resume', 'deploy/web')).stdout).toBe('deployment/web resumed\n');
    expect(((await api.get({ kind: 'Deployment', name: 'web' })) as Deployment).spec.paused).toBe(false);
    expect((await run('rollout', 'resume', 'deploy/web')).stdout).toBe('deployment/web already resumed\n');
    expect(await run('rollout', 'pause', 'sts/db')).toMatchObject({
      code: 1,
      stderr: 'error: statefulset/db: pausing is not supported\n',
    });
  });

  it('restart stamps the pod template with restartedAt (refused while paused)', async () => {
    const { api, run } = cli();
    await api.create(deployment());
    expect((await run('rollout', 'restart', 'deploy/web')).stdout).toBe('deployment/web restarted\n');
    const d = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    expect(d.spec.template.metadata?.annotations).toEqual({
      'kubectl.kubernetes.io/restartedAt': '2026-03-01T12:00:00Z',
    });
    await api.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('db') },
    });
    expect((await run('rollout', 'restart', 'sts/db')).stdout).toBe('statefulset/db restarted\n');
    const sts = (await api.get({ kind: 'StatefulSet', name: 'db' })) as StatefulSet;
    expect(sts.spec.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe(
      '2026-03-01T12:00:00Z',
    );
    await run('rollout', 'pause', 'deploy/web');
    expect((await run('rollout', 'restart', 'deploy/web')).stderr).toBe(
      "error: deployment/web: can't restart paused deployment (run rollout resume first)\n",
    );
  });
});

/** Resolves once the command printed its first line (so it has read the object and is watching). */
async function printedSomething(printed: () => string): Promise<void> {
  for (let i = 0; printed() === ''; i += 1) {
    if (i > 1_000) throw new Error('the command printed nothing');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('cox rollout status', () => {
  const progress = async (api: ObjectApi, status: Deployment['status']) => {
    const d = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    await api.updateStatus({ ...d, status: { observedGeneration: d.metadata.generation, ...status } });
  };

  it('follows the rollout by a watch, printing each new state, until it completes', async () => {
    const { api, start } = cli();
    await api.create(deployment());
    const status = start('rollout', 'status', 'deploy/web');
    await printedSomething(status.printed);
    await progress(api, { replicas: 1, updatedReplicas: 1 });
    await progress(api, { replicas: 3, updatedReplicas: 3, availableReplicas: 1 });
    await progress(api, { replicas: 3, updatedReplicas: 3, availableReplicas: 1, readyReplicas: 1 });
    await progress(api, { replicas: 3, updatedReplicas: 3, availableReplicas: 3 });
    expect(await status.done).toEqual({
      code: 0,
      stdout: [
        'Waiting for deployment spec update to be observed...',
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
        'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...',
        'deployment "web" successfully rolled out',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('-w=false prints the state once; --timeout and the progress deadline exit 1', async () => {
    const { api, run, start } = cli();
    await api.create(deployment());
    await progress(api, { replicas: 0, updatedReplicas: 0 });
    expect(await run('rollout', 'status', '-w=false', 'deploy/web')).toEqual({
      code: 0,
      stdout:
        'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...\n',
      stderr: '',
    });
    expect((await run('rollout', 'status', 'deploy/web', '--watch=false')).code).toBe(0);
    expect(await run('rollout', 'status', 'deploy/web', '--timeout=300ms')).toEqual({
      code: 1,
      stdout:
        'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...\n',
      stderr: 'error: timed out waiting for the condition\n',
    });
    const watching = start('rollout', 'status', '-w', 'deploy/web');
    await printedSomething(watching.printed);
    await progress(api, {
      replicas: 4,
      updatedReplicas: 1,
      conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
    });
    expect(await watching.done).toMatchObject({
      code: 1,
      stderr: 'error: deployment "web" exceeded its progress deadline\n',
    });
    expect(await run('rollout', 'status', 'deploy/web', '--timeout=soon')).toMatchObject({ code: 1 });
    expect((await run('rollout', 'status', 'deploy/nope')).stderr).toBe(
      'error: deployment/nope: not found\n',
    );
    expect((await run('rollout', 'status', 'deploy/web', 'deploy/other')).stderr).toBe(
      'error: rollout status: give one object\n',
    );
  });

  it('ends with an error when the object is deleted while followed', async () => {
    const { api, start } = cli();
    await api.create(deployment());
    const watching = start('rollout', 'status', 'deploy/web');
    await printedSomething(watching.printed);
    await api.delete({ kind: 'Deployment', name: 'web' });
    expect((await watching.done).stderr).toBe('error: deployment/web: object has been deleted\n');
  });
});
