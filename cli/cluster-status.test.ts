import { describe, expect, it } from 'vitest';
import type { ControllersStatus } from '../actors/api.js';
import type { ControllerStats } from '../actors/controllers/controller.js';
import { lastErrorCharsMax, printControllers } from './cluster-status.js';

const stats = (over: Partial<ControllerStats> & { name: string }): ControllerStats => ({
  running: true,
  reconciles: 0,
  errors: 0,
  requeues: 0,
  latencyP50Ms: 0,
  latencyP99Ms: 0,
  queueDepth: 0,
  inFlight: 0,
  delayed: 0,
  restarts: 0,
  ...over,
});

describe('cox cluster controllers', () => {
  it('prints one row per controller by name, with latencies, and cuts the last error', () => {
    const longError = `replicaset/default/web: ${'x'.repeat(100)}`;
    const status: ControllersStatus = {
      leader: 'm2',
      term: 4,
      running: true,
      controllers: [
        stats({
          name: 'scheduler',
          reconciles: 9,
          latencyP50Ms: 0.42,
          latencyP99Ms: 250.4,
          counters: { a: 1 },
        }),
        stats({
          name: 'replicaset',
          reconciles: 120,
          errors: 3,
          requeues: 5,
          queueDepth: 7,
          latencyP50Ms: 1.25,
          latencyP99Ms: 12,
          restarts: 1,
          lastError: longError,
        }),
      ],
      events: { written: 10, dropped: 2, failed: 1 },
    };
    const lines = printControllers(status).split('\n');
    expect(lines[0].split(/\s{3,}/)).toEqual([
      'NAME',
      'RUNNING',
      'RECONCILES',
      'ERRORS',
      'REQUEUES',
      'QUEUE',
      'P50',
      'P99',
      'RESTARTS',
      'LAST ERROR',
    ]);
    const rs = lines[1].split(/\s+/);
    expect(rs.slice(0, 9)).toEqual(['replicaset', 'true', '120', '3', '5', '7', '1.3ms', '12ms', '1']);
    const lastError = lines[1].slice(lines[0].indexOf('LAST ERROR'));
    expect(lastError).toHaveLength(lastErrorCharsMax);
    expect(lastError.endsWith('...')).toBe(true);
    expect(lastError.startsWith('replicaset/default/web: xxx')).toBe(true);
    expect(lines[2].split(/\s+/)).toEqual([
      'scheduler',
      'true',
      '9',
      '0',
      '0',
      '0',
      '0.4ms',
      '250ms',
      '0',
      '-',
    ]);
    expect(lines[3]).toBe('controllers of leader m2 (term 4); events: 10 written, 2 dropped, 1 failed');
  });

  it('says when the leader’s controllers are not running', () => {
    const out = printControllers({
      leader: 'm1',
      running: false,
      controllers: [],
      events: { written: 0, dropped: 0, failed: 0 },
    });
    expect(out).toBe(
      'controllers are not running on leader m1 (starting, or stepping down); events: 0 written, 0 dropped, 0 failed\n',
    );
  });
});
