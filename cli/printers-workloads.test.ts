import { describe, expect, it } from 'vitest';
import { printTable, type TableOptions } from './printers.js';

const now = Date.parse('2026-01-01T01:00:00Z');
const created = '2026-01-01T00:00:00Z';
const table: TableOptions = { wide: false, withNamespace: false, withKind: false, nowMs: now };
const rows = (kind: string, objs: Record<string, unknown>[]) =>
  printTable(kind, objs, table)
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));

describe('workload tables', () => {
  it('DaemonSets: DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE', () => {
    const ds = {
      kind: 'DaemonSet',
      metadata: { name: 'agent', creationTimestamp: created },
      spec: {
        template: { spec: { nodeSelector: { role: 'edge' }, containers: [{ name: 'c', image: 'i' }] } },
      },
      status: {
        desiredNumberScheduled: 3,
        currentNumberScheduled: 3,
        numberReady: 2,
        updatedNumberScheduled: 1,
        numberAvailable: 2,
      },
    };
    expect(rows('DaemonSet', [ds])).toEqual([
      ['NAME', 'DESIRED', 'CURRENT', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'NODE SELECTOR', 'AGE'],
      ['agent', '3', '3', '2', '1', '2', 'role=edge', '60m'],
    ]);
  });

  it('Jobs: STATUS COMPLETIONS DURATION AGE, work queues as "n/1 of p"', () => {
    const job = (spec: object, status: object): Record<string, unknown> => ({
      kind: 'Job',
      metadata: { name: 'j', creationTimestamp: created },
      spec,
      status,
    });
    const done = job(
      { completions: 3, parallelism: 2 },
      {
        succeeded: 3,
        startTime: '2026-01-01T00:00:05Z',
        completionTime: '2026-01-01T00:00:50Z',
        conditions: [{ type: 'Complete', status: 'True' }],
      },
    );
    const queue = job({ parallelism: 3 }, { succeeded: 1, startTime: '2026-01-01T00:50:00Z' });
    const failed = job(
      { completions: 1 },
      {
        failed: 2,
        conditions: [
          { type: 'FailureTarget', status: 'True' },
          { type: 'Failed', status: 'True' },
        ],
      },
    );
    const suspended = job({ completions: 1 }, { conditions: [{ type: 'Suspended', status: 'True' }] });
    expect(rows('Job', [done, queue, failed, suspended])).toEqual([
      ['NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE'],
      ['j', 'Complete', '3/3', '45s', '60m'],
      ['j', 'Running', '1/1 of 3', '10m', '60m'],
      ['j', 'Failed', '0/1', '60m'],
      ['j', 'Suspended', '0/1', '60m'],
    ]);
  });

  it('CronJobs: SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE', () => {
    const cj = {
      kind: 'CronJob',
      metadata: { name: 'nightly', creationTimestamp: created },
      spec: { schedule: '0 3 * * *', suspend: false },
      status: { active: [{ name: 'nightly-1' }], lastScheduleTime: '2026-01-01T00:59:00Z' },
    };
    expect(rows('CronJob', [cj])).toEqual([
      ['NAME', 'SCHEDULE', 'TIMEZONE', 'SUSPEND', 'ACTIVE', 'LAST SCHEDULE', 'AGE'],
      ['nightly', '0 3 * * *', '<none>', 'false', '1', '60s', '60m'],
    ]);
  });
});
