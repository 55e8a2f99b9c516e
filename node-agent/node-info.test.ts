import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { HollowRuntime } from './hollow-runtime.js';
import { goArch, nodeSystemInfo, prettyName } from './node-info.js';

describe('node system info', () => {
  it('reads PRETTY_NAME from os-release text, quoted or not', () => {
    expect(
      prettyName('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'),
    ).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(prettyName("PRETTY_NAME='Alpine Linux v3.19'")).toBe('Alpine Linux v3.19');
    expect(prettyName('PRETTY_NAME=Plain')).toBe('Plain');
    expect(prettyName('PRETTY_NAME="say \\"hi\\""')).toBe('say "hi"');
    expect(prettyName('NAME=x\n')).toBeUndefined();
    expect(prettyName('PRETTY_NAME=""')).toBeUndefined();
  });

  it('names architectures as Go does', () => {
    expect(goArch('x64')).toBe('amd64');
    expect(goArch('arm64')).toBe('arm64');
    expect(goArch('riscv64')).toBe('riscv64');
  });

  it('reports the kernel, the agent version and the runtime', async () => {
    const info = await nodeSystemInfo(new HollowRuntime({ node: 'n' }));
    expect(info).toMatchObject({
      kernelVersion: release(),
      containerRuntimeVersion: 'hollow',
      operatingSystem: 'linux',
    });
    expect(info.kubeletVersion).toMatch(/^v\d+\.\d+\.\d+/);
  });
});
