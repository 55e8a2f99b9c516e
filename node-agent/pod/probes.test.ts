import { describe, expect, it } from 'vitest';
import type { Container } from '../../core/objects.js';
import { ContainerConfigError } from './errors.js';
import {
  type ContainerProbes,
  initialProbes,
  nextProbes,
  type ProbeAction,
  type ProbeKind,
  probeTarget,
  probeTiming,
} from './probes.js';

const t0 = 1_000_000;
const exec = { exec: { command: ['true'] } };

type Drive = {
  state: ContainerProbes;
  log: { atMs: number; action: ProbeAction }[];
  probes: { atMs: number; probe: ProbeKind }[];
};

/** Runs a container's probes until `untilMs`: every due probe is answered at once by `answer`. */
function drive(
  container: Container,
  untilMs: number,
  answer: (probe: ProbeKind, nowMs: number) => boolean,
): Drive {
  let nowMs = t0;
  let step = nextProbes(initialProbes(container, t0), { type: 'tick', nowMs });
  const out: Drive = { state: step.state, log: [], probes: [] };
  const pending: ProbeKind[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    out.state = step.state;
    for (const action of step.actions) out.log.push({ atMs: nowMs, action });
    for (const { probe } of step.due) {
      pending.push(probe);
      out.probes.push({ atMs: nowMs, probe });
    }
    const probe = pending.shift();
    if (probe !== undefined) {
      step = nextProbes(step.state, { type: 'result', probe, ok: answer(probe, nowMs), nowMs });
      continue;
    }
    if (step.wakeAtMs === undefined || step.wakeAtMs > untilMs) return out;
    nowMs = step.wakeAtMs;
    step = nextProbes(step.state, { type: 'tick', nowMs });
  }
  throw new Error('runaway probe loop');
}

describe('probe timing', () => {
  it('applies the Kubernetes defaults', () => {
    expect(probeTiming(exec)).toEqual({
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1000,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });

  it('runs the first probe after initialDelaySeconds, then every periodSeconds', () => {
    const c: Container = {
      name: 'a',
      image: 'i',
      livenessProbe: { ...exec, initialDelaySeconds: 5, periodSeconds: 2 },
    };
    const { probes } = drive(c, t0 + 11_000, () => true);
    expect(probes.map((p) => p.atMs - t0)).toEqual([5000, 7000, 9000, 11_000]);
  });

  it('never hands out a second probe while one is in flight', () => {
    const c: Container = { name: 'a', image: 'i', readinessProbe: { ...exec, periodSeconds: 1 } };
    const first = nextProbes(initialProbes(c, t0), { type: 'tick', nowMs: t0 });
    expect(first.due).toEqual([{ probe: 'readiness', timeoutMs: 1000 }]);
    const later = nextProbes(first.state, { type: 'tick', nowMs: t0 + 5000 });
    expect(later.due).toEqual([]);
    expect(later.wakeAtMs).toBeUndefined();
  });
});

describe('liveness', () => {
  it('asks for a restart after failureThreshold consecutive failures, then stops probing', () => {
    const c: Container = {
      name: 'a',
      image: 'i',
      livenessProbe: { ...exec, periodSeconds: 1, failureThreshold: 3 },
    };
    // ok, fail, fail, ok (resets), fail, fail, fail → restart at the 7th probe
    const answers = [true, false, false, true, false, false, false, true];
    let n = 0;
    const { state, log, probes } = drive(c, t0 + 60_000, () => answers[n++]);
    expect(probes).toHaveLength(7);
    // the container is unready from the moment it is condemned
    expect(log).toEqual([
      { atMs: t0 + 6000, action: { type: 'ready', ready: false } },
      { atMs: t0 + 6000, action: { type: 'restart', probe: 'liveness', message: 'Liveness probe failed' } },
    ]);
    expect(state.stopped).toBe(true);
    expect(nextProbes(state, { type: 'tick', nowMs: t0 + 100_000 }).due).toEqual([]);
  });

  it('names the failure in the restart message', () => {
    const c: Container = { name: 'a', image: 'i', livenessProbe: { ...exec, failureThreshold: 1 } };
    const first = nextProbes(initialProbes(c, t0), { type: 'tick', nowMs: t0 });
    const step = nextProbes(first.state, {
      type: 'result',
      probe: 'liveness',
      ok: false,
      nowMs: t0,
      message: 'HTTP 500',
    });
    expect(step.actions).toContainEqual({
      type: 'restart',
      probe: 'liveness',
      message: 'Liveness probe failed: HTTP 500',
    });
  });
});

describe('readiness', () => {
  it('starts unready, becomes ready after successThreshold successes, unready after failureThreshold failures', () => {
    const c: Container = {
      name: 'a',
      image: 'i',
      readinessProbe: { ...exec, periodSeconds: 1, successThreshold: 2, failureThreshold: 2 },
    };
    expect(initialProbes(c, t0).ready).toBe(false);
    const answers = [true, true, false, true, false, false, true];
    let n = 0;
    const { log, state } = drive(c, t0 + 6000, () => answers[n++]);
    expect(log).toEqual([
      { atMs: t0 + 1000, action: { type: 'ready', ready: true } },
      { atMs: t0 + 5000, action: { type: 'ready', ready: false } },
    ]);
    expect(state.ready).toBe(false);
  });

  it('is ready at once without a readiness probe', () => {
    expect(initialProbes({ name: 'a', image: 'i' }, t0)).toMatchObject({ started: true, ready: true });
  });
});

describe('startup', () => {
  const c: Container = {
    name: 'a',
    image: 'i',
    startupProbe: { ...exec, periodSeconds: 1, failureThreshold: 5 },
    livenessProbe: { ...exec, periodSeconds: 1, initialDelaySeconds: 1 },
    readinessProbe: { ...exec, periodSeconds: 1 },
  };

  it('gates liveness and readiness until it succeeds', () => {
    const { probes, log } = drive(c, t0 + 4000, (probe, nowMs) => probe !== 'startup' || nowMs >= t0 + 2000);
    const kindsAt = (ms: number) => probes.filter((p) => p.atMs === t0 + ms).map((p) => p.probe);
    expect(kindsAt(0)).toEqual(['startup']);
    expect(kindsAt(1000)).toEqual(['startup']);
    expect(kindsAt(2000)).toEqual(['startup', 'liveness', 'readiness']);
    expect(kindsAt(3000)).toEqual(['liveness', 'readiness']);
    expect(log.map((l) => l.action)).toEqual([{ type: 'started' }, { type: 'ready', ready: true }]);
  });

  it('asks for a restart when it fails failureThreshold times', () => {
    const { log, probes } = drive(c, t0 + 60_000, () => false);
    expect(probes.every((p) => p.probe === 'startup')).toBe(true);
    expect(probes).toHaveLength(5);
    expect(log.map((l) => l.action)).toEqual([
      { type: 'restart', probe: 'startup', message: 'Startup probe failed' },
    ]);
  });

  it('ignores results nobody asked for', () => {
    const s = initialProbes(c, t0);
    const step = nextProbes(s, { type: 'result', probe: 'liveness', ok: false, nowMs: t0 });
    expect(step.state.workers.liveness).toEqual(s.workers.liveness);
    expect(step.actions).toEqual([]);
  });
});

describe('probeTarget', () => {
  const container: Container = { name: 'web', image: 'i', ports: [{ name: 'http', containerPort: 8080 }] };
  const field = 'spec.containers[0].readinessProbe';

  it('resolves httpGet with the pod IP, a named port, the path and headers', () => {
    const target = probeTarget(
      { httpGet: { port: 'http', path: 'healthz', httpHeaders: [{ name: 'X-A', value: '1' }] } },
      container,
      '172.17.0.3',
      field,
    );
    expect(target).toEqual({
      type: 'http',
      scheme: 'http',
      host: '172.17.0.3',
      port: 8080,
      path: '/healthz',
      headers: [{ name: 'X-A', value: '1' }],
    });
    expect(probeTarget({ httpGet: { port: 81, host: '127.0.0.1' } }, container, 'ip', field)).toMatchObject({
      host: '127.0.0.1',
      port: 81,
      path: '/',
    });
  });

  it('resolves tcpSocket and exec', () => {
    expect(probeTarget({ tcpSocket: { port: 'http' } }, container, '10.1.1.1', field)).toEqual({
      type: 'tcp',
      host: '10.1.1.1',
      port: 8080,
    });
    expect(probeTarget({ exec: { command: ['cat', '/tmp/ok'] } }, container, 'ip', field)).toEqual({
      type: 'exec',
      command: ['cat', '/tmp/ok'],
    });
  });

  it('fails with the field for unknown port names, HTTPS and empty handlers', () => {
    const message = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        if (e instanceof ContainerConfigError) return e.message;
      }
      return 'no ContainerConfigError';
    };
    expect(message(() => probeTarget({ tcpSocket: { port: 'grpc' } }, container, 'ip', field))).toBe(
      'spec.containers[0].readinessProbe.tcpSocket.port: no port named "grpc" in container "web"',
    );
    expect(
      message(() => probeTarget({ httpGet: { port: 80, scheme: 'HTTPS' } }, container, 'ip', field)),
    ).toBe('spec.containers[0].readinessProbe.httpGet.scheme: scheme HTTPS is not supported (HTTP only)');
    expect(message(() => probeTarget({}, container, 'ip', field))).toBe(
      'spec.containers[0].readinessProbe: must specify exec, httpGet or tcpSocket',
    );
  });
});
