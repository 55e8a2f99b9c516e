import { describe, expect, it } from 'vitest';
import type { Container, Pod, PodSpec, RestartPolicy } from '../../core/objects.js';
import type { ContainerObservation } from './observation.js';
import { type PodStatusInput, podStatus, qosClass } from './status.js';

const t0 = Date.parse('2024-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function makePod(spec: Partial<PodSpec> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u' },
    spec: { containers: [{ name: 'app', image: 'coxswain/busybox' }], ...spec },
  };
}
const run = (over: Partial<ContainerObservation> = {}): ContainerObservation => ({
  id: 'abc',
  phase: 'running',
  restartCount: 0,
  startedAt: iso(t0),
  ...over,
});
const exit = (exitCode: number, over: Partial<ContainerObservation> = {}): ContainerObservation =>
  run({ phase: 'exited', exitCode, finishedAt: iso(t0 + 1000), ...over });

function status(pod: Pod, over: Partial<PodStatusInput> = {}) {
  return podStatus({ pod, observed: {}, podIP: '172.17.0.2', hostIP: '127.0.1.1', nowMs: t0, ...over });
}
const condition = (s: ReturnType<typeof status>, type: string) => s.conditions?.find((c) => c.type === type);

describe('phase', () => {
  it('is Pending before containers run, with ContainerCreating or an explicit waiting reason', () => {
    const pod = makePod();
    const s = status(pod);
    expect(s.phase).toBe('Pending');
    expect(s.containerStatuses?.[0].state).toEqual({ waiting: { reason: 'ContainerCreating' } });
    const pulling = status(pod, {
      waiting: { app: { reason: 'ImagePullBackOff', message: 'image x: not found' } },
    });
    expect(pulling.containerStatuses?.[0].state).toEqual({
      waiting: { reason: 'ImagePullBackOff', message: 'image x: not found' },
    });
    expect(pulling.phase).toBe('Pending');
  });

  it('is Running with a running container', () => {
    const s = status(makePod(), { observed: { app: run() } });
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses?.[0]).toMatchObject({
      name: 'app',
      image: 'coxswain/busybox',
      containerID: 'docker://abc',
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: iso(t0) } },
    });
  });

  it.each<[RestartPolicy, number[], string]>([
    ['Never', [0, 0], 'Succeeded'],
    ['OnFailure', [0, 0], 'Succeeded'],
    ['Always', [0, 0], 'Running'],
    ['Never', [0, 1], 'Failed'],
    ['OnFailure', [0, 1], 'Running'],
  ])('restartPolicy %s, exits %j → %s', (restartPolicy, codes, phase) => {
    const containers: Container[] = codes.map((_, i) => ({ name: `c${i}`, image: 'i' }));
    const observed = Object.fromEntries(codes.map((code, i) => [`c${i}`, exit(code)]));
    expect(status(makePod({ restartPolicy, containers }), { observed }).phase).toBe(phase);
  });

  it('reports CrashLoopBackOff with the exit in lastState', () => {
    const s = status(makePod(), {
      observed: { app: exit(1, { restartCount: 3 }) },
      waiting: {
        app: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=app' },
      },
    });
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses?.[0]).toMatchObject({
      restartCount: 3,
      ready: false,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: iso(t0 + 1000) } },
    });
  });

  it('keeps the previous run in lastState while running again', () => {
    const s = status(makePod(), {
      observed: { app: run({ restartCount: 1, lastTermination: { exitCode: 137, reason: 'OOMKilled' } }) },
    });
    expect(s.containerStatuses?.[0].lastState).toEqual({
      terminated: { exitCode: 137, reason: 'OOMKilled' },
    });
  });
});

describe('init containers', () => {
  const spec: Partial<PodSpec> = {
    initContainers: [
      { name: 'i1', image: 'i' },
      { name: 'i2', image: 'i' },
    ],
  };

  it('are Pending and not Initialized until all succeeded', () => {
    const s = status(makePod(spec), { observed: { i1: exit(0), i2: run() } });
    expect(s.phase).toBe('Pending');
    expect(condition(s, 'Initialized')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotInitialized',
      message: 'containers with incomplete status: [i2]',
    });
    expect(s.initContainerStatuses?.map((c) => c.ready)).toEqual([true, false]);
    expect(s.containerStatuses?.[0].state).toEqual({ waiting: { reason: 'PodInitializing' } });
  });

  it('fail the pod under Never, and keep it Pending under OnFailure', () => {
    const observed = { i1: exit(1) };
    expect(status(makePod({ ...spec, restartPolicy: 'Never' }), { observed }).phase).toBe('Failed');
    const waiting = { i1: { reason: 'CrashLoopBackOff' } };
    expect(status(makePod({ ...spec, restartPolicy: 'OnFailure' }), { observed, waiting }).phase).toBe(
      'Pending',
    );
  });

  it('are Initialized once all exited 0', () => {
    const s = status(makePod(spec), { observed: { i1: exit(0), i2: exit(0), app: run() } });
    expect(condition(s, 'Initialized')?.status).toBe('True');
    expect(s.phase).toBe('Running');
  });
});

describe('conditions', () => {
  const probed = makePod({
    containers: [{ name: 'app', image: 'i', readinessProbe: { exec: { command: ['true'] } } }],
  });

  it('are not Ready while a readiness probe fails, with the unready containers named', () => {
    const s = status(probed, { observed: { app: run({ ready: false }) } });
    expect(s.phase).toBe('Running');
    for (const type of ['Ready', 'ContainersReady']) {
      expect(condition(s, type)).toMatchObject({
        status: 'False',
        reason: 'ContainersNotReady',
        message: 'containers with unready status: [app]',
      });
    }
    expect(condition(s, 'PodScheduled')?.status).toBe('True');
    // a readiness probe not yet passed is not ready either
    expect(condition(status(probed, { observed: { app: run() } }), 'Ready')?.status).toBe('False');
  });

  it('are not started (nor ready) until the startup probe passes', () => {
    const pod = makePod({
      containers: [{ name: 'app', image: 'i', startupProbe: { exec: { command: ['true'] } } }],
    });
    expect(status(pod, { observed: { app: run() } }).containerStatuses?.[0]).toMatchObject({
      started: false,
      ready: false,
    });
    expect(status(pod, { observed: { app: run({ started: true }) } }).containerStatuses?.[0]).toMatchObject({
      started: true,
      ready: true,
    });
  });

  it('keep lastTransitionTime while unchanged and take now when changed', () => {
    const first = status(probed, { observed: { app: run({ ready: false }) } });
    const same = status(probed, {
      observed: { app: run({ ready: false }) },
      previous: first,
      nowMs: t0 + 5000,
    });
    expect(condition(same, 'Ready')?.lastTransitionTime).toBe(iso(t0));
    expect(condition(same, 'PodScheduled')?.lastTransitionTime).toBe(iso(t0));
    const ready = status(probed, {
      observed: { app: run({ ready: true }) },
      previous: same,
      nowMs: t0 + 9000,
    });
    expect(condition(ready, 'Ready')).toEqual({
      type: 'Ready',
      status: 'True',
      lastTransitionTime: iso(t0 + 9000),
    });
    expect(condition(ready, 'Initialized')?.lastTransitionTime).toBe(iso(t0));
  });

  it('say PodCompleted once the pod Succeeded', () => {
    const s = status(makePod({ restartPolicy: 'Never' }), { observed: { app: exit(0) } });
    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
  });
});

describe('addresses and times', () => {
  it('reports IPs and keeps the first startTime', () => {
    const first = status(makePod());
    expect(first).toMatchObject({ podIP: '172.17.0.2', podIPs: [{ ip: '172.17.0.2' }], hostIP: '127.0.1.1' });
    expect(first.startTime).toBe(iso(t0));
    expect(status(makePod(), { previous: first, nowMs: t0 + 60_000 }).startTime).toBe(iso(t0));
    expect('podIP' in status(makePod(), { podIP: undefined })).toBe(false);
  });

  it('uses the runtime as container id scheme', () => {
    expect(
      status(makePod(), { observed: { app: run() }, runtime: 'process' }).containerStatuses?.[0].containerID,
    ).toBe('process://abc');
  });
});

describe('qosClass', () => {
  const spec = (...resources: Container['resources'][]): PodSpec => ({
    containers: resources.map((r, i) => ({ name: `c${i}`, image: 'i', resources: r })),
  });
  const full = { cpu: '500m', memory: '128Mi' };

  it('is BestEffort without requests and limits', () => {
    expect(qosClass(spec(undefined, {}))).toBe('BestEffort');
    expect(qosClass(spec({ requests: { cpu: '0' } }))).toBe('BestEffort');
  });

  it('is Guaranteed when every container limits cpu and memory and requests equal limits', () => {
    expect(qosClass(spec({ limits: full }, { limits: full, requests: full }))).toBe('Guaranteed');
    expect(qosClass(spec({ limits: full, requests: { cpu: '0.5', memory: '134217728' } }))).toBe(
      'Guaranteed',
    );
  });

  it('is Burstable otherwise', () => {
    expect(qosClass(spec({ limits: full }, undefined))).toBe('Burstable');
    expect(qosClass(spec({ limits: { cpu: '1' } }))).toBe('Burstable');
    expect(qosClass(spec({ limits: full, requests: { cpu: '100m' } }))).toBe('Burstable');
    expect(qosClass(spec({ requests: { memory: '1Gi' } }))).toBe('Burstable');
  });

  it('counts init containers', () => {
    const s = spec({ limits: full });
    expect(qosClass({ ...s, initContainers: [{ name: 'i', image: 'i' }] })).toBe('Burstable');
    expect(status(makePod({ ...s })).qosClass).toBe('Guaranteed');
  });
});
