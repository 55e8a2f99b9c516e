import { afterAll, describe, expect, it } from 'vitest';
import { CommandError, CommandShell, runCommand } from './commands.js';

const shell = new CommandShell();
afterAll(() => shell.close());

describe('host commands', () => {
  it('runs a command with input and reports its failure with what it said', async () => {
    expect((await runCommand(['cat'], { input: 'a\nb\n' })).stdout).toBe('a\nb\n');
    await expect(runCommand(['sh', '-c', 'echo nope >&2; exit 3'])).rejects.toThrow(
      'sh -c echo nope >&2; exit 3: exit 3: nope',
    );
    await expect(runCommand(['/nonexistent/cmd'])).rejects.toBeInstanceOf(CommandError);
  });

  it('runs commands through one shell, in order, with input passed verbatim', async () => {
    const tricky = 'it\'s "quoted" $HOME `x` \\ and __COX_IN_1\nno newline at the end';
    const results = await Promise.all([
      shell.run(['cat'], { input: tricky }),
      shell.run(['printf', '%s', "one 'arg'"]),
      shell.run(['sh', '-c', 'echo out; echo err >&2']),
    ]);
    expect(results.map((r) => r.stdout)).toEqual([`${tricky}\n`, "one 'arg'", 'out\nerr\n']);
    await expect(shell.run(['sh', '-c', 'echo broken; exit 4'])).rejects.toThrow('exit 4: broken');
    expect((await shell.run(['echo', 'still serving'])).stdout).toBe('still serving\n');
  });

  it('kills a command past its timeout and starts a new shell for the next', async () => {
    await expect(shell.run(['sleep', '30'], { timeoutMs: 200 })).rejects.toThrow('no exit within 200 ms');
    expect((await shell.run(['echo', 'again'])).stdout).toBe('again\n');
  });
});
