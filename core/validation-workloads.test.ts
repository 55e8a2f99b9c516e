import { describe, expect, it } from 'vitest';
import { applyDefaults } from './defaults.js';
import type { ApiObject, ControllerRevision, Job } from './objects.js';
import { validateUpdate, withGeneratedFields } from './update-rules.js';
import { formatFieldError, validateObject } from './validation.js';

// biome-ignore lint/suspicious/noExplicitAny: tests poke arbitrary (possibly wrong) shapes into objects
type Loose = any;

function job(spec: Loose = {}, restartPolicy = 'Never'): Loose {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'j', namespace: 'default' },
    spec: {
      template: {
        spec: {
          restartPolicy,
          containers: [{ name: 'main', image: 'i' }],
          initContainers: [{ name: 'init', image: 'i' }],
        },
      },
      ...spec,
    },
  };
}

const problems = (obj: unknown) => validateObject(applyDefaults(obj as ApiObject)).map(formatFieldError);

describe('Job podFailurePolicy validation', () => {
  it('accepts the Kubernetes shapes', () => {
    expect(
      problems(
        job({
          podFailurePolicy: {
            rules: [
              { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [1, 42] } },
              { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
              { action: 'Count', onExitCodes: { operator: 'NotIn', values: [0] } },
            ],
          },
        }),
      ),
    ).toEqual([]);
  });

  it.each([
    [
      'restartPolicy other than Never',
      job(
        {
          podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [1] } }] },
        },
        'OnFailure',
      ),
      'spec.template.spec.restartPolicy: only "Never" is supported when podFailurePolicy is specified',
    ],
    ['no rules', job({ podFailurePolicy: { rules: [] } }), 'spec.podFailurePolicy.rules: required'],
    [
      'both matchers',
      job({
        podFailurePolicy: {
          rules: [
            {
              action: 'Ignore',
              onExitCodes: { operator: 'In', values: [1] },
              onPodConditions: [{ type: 'X' }],
            },
          ],
        },
      }),
      'spec.podFailurePolicy.rules[0]: specifying both onExitCodes and onPodConditions is not supported',
    ],
    [
      'no matcher',
      job({ podFailurePolicy: { rules: [{ action: 'Ignore' }] } }),
      'spec.podFailurePolicy.rules[0]: specifying one of onExitCodes and onPodConditions is required',
    ],
    [
      'FailIndex',
      job({
        podFailurePolicy: { rules: [{ action: 'FailIndex', onExitCodes: { operator: 'In', values: [1] } }] },
      }),
      'spec.podFailurePolicy.rules[0].action: FailIndex requires backoffLimitPerIndex, which is not supported',
    ],
    [
      'an unknown action',
      job({
        podFailurePolicy: { rules: [{ action: 'Explode', onExitCodes: { operator: 'In', values: [1] } }] },
      }),
      'spec.podFailurePolicy.rules[0].action: unsupported value "Explode": supported values: "FailJob", "Ignore", "Count"',
    ],
    [
      '0 with In',
      job({
        podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [0, 3] } }] },
      }),
      'spec.podFailurePolicy.rules[0].onExitCodes.values[0]: must not be 0 for the In operator',
    ],
    [
      'unordered codes',
      job({
        podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [5, 3] } }] },
      }),
      'spec.podFailurePolicy.rules[0].onExitCodes.values[1]: must be ordered',
    ],
    [
      'duplicate codes',
      job({
        podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [3, 3] } }] },
      }),
      'spec.podFailurePolicy.rules[0].onExitCodes.values[1]: duplicate value 3',
    ],
    [
      'an unknown container',
      job({
        podFailurePolicy: {
          rules: [{ action: 'FailJob', onExitCodes: { containerName: 'nope', operator: 'In', values: [3] } }],
        },
      }),
      'spec.podFailurePolicy.rules[0].onExitCodes.containerName: must be one of the container or initContainer names in the pod template',
    ],
    [
      'a condition status',
      job({
        podFailurePolicy: {
          rules: [{ action: 'Ignore', onPodConditions: [{ type: 'X', status: 'Maybe' }] }],
        },
      }),
      'spec.podFailurePolicy.rules[0].onPodConditions[0].status: unsupported value "Maybe": supported values: "True", "False", "Unknown"',
    ],
  ])('refuses %s', (_what, obj, message) => {
    expect(problems(obj)).toContain(message);
  });
});

describe('CronJob time zones', () => {
  const cron = (timeZone?: string): Loose => ({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'c', namespace: 'default' },
    spec: {
      schedule: '@hourly',
      ...(timeZone !== undefined ? { timeZone } : {}),
      jobTemplate: { spec: job().spec },
    },
  });
  it('accepts UTC only (schedules run in UTC)', () => {
    expect(problems(cron())).toEqual([]);
    expect(problems(cron('UTC'))).toEqual([]);
    expect(problems(cron('Etc/UTC'))).toEqual([]);
    expect(problems({ ...cron(), metadata: { name: 'x'.repeat(53), namespace: 'default' } })).toEqual([
      'metadata.name: must be no more than 52 characters',
    ]);
    expect(problems(cron('America/New_York'))).toEqual([
      'spec.timeZone: unsupported value "America/New_York": supported values: "UTC", "Etc/UTC"',
    ]);
  });
});

describe('env fieldRef to a label or annotation', () => {
  it("accepts metadata.annotations['k'] and metadata.labels['k'], as Kubernetes does for env vars", () => {
    const pod = (fieldPath: string): Loose => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default' },
      spec: {
        containers: [{ name: 'c', image: 'i', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath } } }] }],
      },
    });
    expect(problems(pod("metadata.annotations['batch.kubernetes.io/job-completion-index']"))).toEqual([]);
    expect(problems(pod("metadata.labels['app']"))).toEqual([]);
    expect(problems(pod('metadata.annotations'))[0]).toMatch(
      /^spec\.containers\[0\]\.env\[0\]\.valueFrom\.fieldRef\.fieldPath: unsupported value/,
    );
  });
});

describe('generated Job selectors and ControllerRevision updates', () => {
  it('a Job without a selector gets one from its uid, and its template the job labels', () => {
    const j = withGeneratedFields({
      ...job(),
      metadata: { name: 'j', namespace: 'default', uid: 'u1' },
    }) as Job;
    expect(j.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': 'u1' } });
    expect(j.spec.template.metadata?.labels).toEqual({
      'batch.kubernetes.io/controller-uid': 'u1',
      'batch.kubernetes.io/job-name': 'j',
      'controller-uid': 'u1',
      'job-name': 'j',
    });
    expect(problems(j)).toEqual([]);
  });

  it('a user selector is narrowed to the uid; manualSelector keeps it as is; a contradicting label fails', () => {
    const withSel = job({
      selector: { matchLabels: { app: 'x' } },
      template: { metadata: { labels: { app: 'x' } }, spec: job().spec.template.spec },
    });
    const j = withGeneratedFields({
      ...withSel,
      metadata: { name: 'j', namespace: 'default', uid: 'u1' },
    }) as Job;
    expect(j.spec.selector?.matchLabels).toEqual({ app: 'x', 'batch.kubernetes.io/controller-uid': 'u1' });
    const manual = {
      ...withSel,
      spec: { ...withSel.spec, manualSelector: true },
      metadata: { name: 'j', namespace: 'default', uid: 'u1' },
    };
    expect(withGeneratedFields(manual)).toBe(manual);
    const liar = job({
      template: {
        metadata: { labels: { 'batch.kubernetes.io/controller-uid': 'other' } },
        spec: job().spec.template.spec,
      },
    });
    const bad = withGeneratedFields({ ...liar, metadata: { name: 'j', namespace: 'default', uid: 'u1' } });
    expect(problems(bad)).toEqual(['spec.template.metadata.labels: does not match spec.selector']);
  });

  it("a ControllerRevision's data is immutable; its revision number may change", () => {
    const rev: ControllerRevision = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: { name: 'r', namespace: 'default' },
      data: { spec: { template: { spec: { containers: [] } } } },
      revision: 1,
    };
    expect(validateUpdate(rev, { ...rev, revision: 4 })).toEqual([]);
    expect(validateUpdate(rev, { ...rev, data: { spec: {} } }).map(formatFieldError)).toEqual([
      'data: field is immutable',
    ]);
  });
});

describe('malformed input never throws', () => {
  it('a podFailurePolicy without a template, a CronJob without metadata', () => {
    expect(() =>
      validateObject({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'j', namespace: 'd' },
        spec: { podFailurePolicy: { rules: [] } },
      }),
    ).not.toThrow();
    expect(() => validateObject({ apiVersion: 'batch/v1', kind: 'CronJob', spec: {} })).not.toThrow();
    expect(() =>
      validateObject({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: 'x', spec: {} }),
    ).not.toThrow();
  });
});
