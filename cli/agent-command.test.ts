import { describe, expect, it } from 'vitest';
import { parseLabelsFlag, parseTaintsFlag } from './agent-command.js';

describe('cox agent flags', () => {
  it('parses labels and taints', () => {
    expect(parseLabelsFlag('zone=a, disk=ssd')).toEqual({ zone: 'a', disk: 'ssd' });
    expect(parseLabelsFlag(undefined)).toEqual({});
    expect(parseTaintsFlag('gpu=true:NoSchedule,maint:NoExecute')).toEqual([
      { key: 'gpu', value: 'true', effect: 'NoSchedule' },
      { key: 'maint', effect: 'NoExecute' },
    ]);
  });

  it('names the bad part', () => {
    expect(() => parseLabelsFlag('zone')).toThrow('--labels: "zone" is not key=value');
    expect(() => parseTaintsFlag('gpu=true:Sometimes')).toThrow(
      '--taints: "gpu=true:Sometimes" is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute',
    );
  });
});
