import { describe, expect, it } from 'vitest';
import { type AgentFlags, agentSettings, parseLabelsFlag, parseTaintsFlag } from './agent-command.js';
import { UsageError } from './errors.js';

const flags = (more: Partial<AgentFlags> = {}): AgentFlags => ({
  name: 'n1',
  masters: '127.0.0.1:7201, 127.0.0.1:7202',
  runtime: 'docker',
  nodeIp: '127.0.1.1',
  ...more,
});

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

  it("defaults the restart backoff to kubelet's 10 s doubling to 5 min", () => {
    const s = agentSettings(flags());
    expect(s.masters).toEqual(['127.0.0.1:7201', '127.0.0.1:7202']);
    expect(s.restartBackoff).toEqual({
      backoffMsInitial: 10_000,
      backoffMsMax: 300_000,
      backoffResetAfterRunMs: 600_000,
    });
    expect(s.hollowStartDelayMs).toBe(0);
  });

  it('takes --restart-backoff-initial and --restart-backoff-max as durations', () => {
    const s = agentSettings(flags({ restartBackoffInitial: '500ms', restartBackoffMax: '1m30s' }));
    expect(s.restartBackoff).toMatchObject({ backoffMsInitial: 500, backoffMsMax: 90_000 });
    // An initial delay above the default cap raises the cap with it.
    const long = agentSettings(flags({ restartBackoffInitial: '10m' }));
    expect(long.restartBackoff).toMatchObject({ backoffMsInitial: 600_000, backoffMsMax: 600_000 });
  });

  it('rejects bad backoff values in one line naming the flag', () => {
    const bad = (more: Partial<AgentFlags>) => {
      try {
        agentSettings(flags(more));
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ restartBackoffInitial: 'soon' })).toBe(
      '--restart-backoff-initial: "soon" is not a duration like 500ms, 10s, 5m or 1h30m',
    );
    expect(bad({ restartBackoffMax: '5' })).toBe(
      '--restart-backoff-max: "5" is not a duration like 500ms, 10s, 5m or 1h30m',
    );
    expect(bad({ restartBackoffInitial: '0s' })).toBe('--restart-backoff-initial: must be more than 0');
    expect(bad({ restartBackoffInitial: '1m', restartBackoffMax: '30s' })).toBe(
      '--restart-backoff-max: 30s is less than --restart-backoff-initial 1m',
    );
    expect(bad({ restartBackoffMax: '2s' })).toBe(
      '--restart-backoff-max: 2s is less than --restart-backoff-initial 10s (the default)',
    );
    expect(bad({ restartBackoffMax: '25h' })).toBe('--restart-backoff-max: must be at most 24h');
  });

  it('checks the name, masters, runtime and the hollow start delay', () => {
    expect(() => agentSettings(flags({ name: undefined }))).toThrow('agent: --name is required');
    expect(() => agentSettings(flags({ masters: ' , ' }))).toThrow(
      'agent: --masters: " , " names no address',
    );
    expect(() => agentSettings(flags({ runtime: 'podman' }))).toThrow(
      'agent: --runtime: "podman" is not one of docker, process, hollow',
    );
    expect(agentSettings(flags({ runtime: 'hollow', hollowStartDelay: '250ms' })).hollowStartDelayMs).toBe(
      250,
    );
    expect(() => agentSettings(flags({ hollowStartDelay: '1s' }))).toThrow(
      '--hollow-start-delay: only with --runtime hollow',
    );
    expect(agentSettings(flags()).pullImages).toBe(false);
    expect(agentSettings(flags({ pullImages: true })).pullImages).toBe(true);
    expect(() => agentSettings(flags({ runtime: 'process', pullImages: true }))).toThrow(
      '--pull-images: only with --runtime docker',
    );
  });
});

describe('cox agent with a bad flag', () => {
  it('prints one error line and exits 1 before touching anything', async () => {
    const { runCox } = await import('./main.js');
    let stderr = '';
    const code = await runCox(
      ['agent', '--name', 'n1', '--masters', '127.0.0.1:1', '--restart-backoff-max', '5 minutes'],
      {
        env: {},
        homeDir: '/nonexistent',
        nowMs: () => 0,
        stdout: () => {},
        stderr: (s) => {
          stderr += s;
        },
        files: {
          listDir: () => undefined,
          readFile: () => '',
          readIfExists: () => undefined,
          readStdin: async () => '',
          join: (...p: string[]) => p.join('/'),
        },
      },
    );
    expect(code).toBe(1);
    expect(stderr).toBe(
      'error: --restart-backoff-max: "5 minutes" is not a duration like 500ms, 10s, 5m or 1h30m\n',
    );
  });
});
