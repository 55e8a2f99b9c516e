/**
 * The kernel adapter of the proxy rules port: iptables chains owned by this agent (see
 * kernel-render.ts for the layout), written with `iptables-restore --noflush`, one transaction
 * per apply that rewrites whole chains, never a flush of anything we do not own. Needs root.
 *
 * The caller makes the service CIDR local (local-net.ts) before the first apply.
 */

import { CommandShell, runCommand } from './commands.js';
import type { Cidr } from './ipv4.js';
import {
  chainTag,
  matchesSaved,
  parseSaved,
  type RenderMemo,
  type RuleSet,
  removalInput,
  renderRules,
  restoreInput,
  type SavedRules,
} from './kernel-render.js';
import type { ApplyResult, ProxyPlan, ProxyRules } from './rules.js';

export interface KernelRulesOptions {
  node: string;
  nodeIp: string;
  serviceCidr: Cidr;
  /** Runs every command after this prefix (tests: `['ip', 'netns', 'exec', NAME]`). */
  commandPrefix?: readonly string[];
}

export class KernelProxyRules implements ProxyRules {
  readonly mode = 'kernel' as const;
  readonly tag: string;
  /** What the last successful apply wrote; undefined: the next apply is full. */
  private current: RuleSet | undefined;
  private readonly memo: RenderMemo = new WeakMap();
  /** iptables-save and iptables-restore run through one shell (see CommandShell: forks are costly). */
  private readonly shell: CommandShell;

  constructor(private readonly opts: KernelRulesOptions) {
    this.tag = chainTag(opts.node, opts.nodeIp);
    this.shell = new CommandShell(opts.commandPrefix ?? []);
  }

  async apply(plan: ProxyPlan, opts: { full?: boolean; verify?: boolean } = {}): Promise<ApplyResult> {
    const desired = renderRules(
      plan,
      {
        tag: this.tag,
        node: this.opts.node,
        nodeIp: this.opts.nodeIp,
        serviceCidr: this.opts.serviceCidr.text,
      },
      this.memo,
    );
    let full = opts.full === true || this.current === undefined;
    let saved: SavedRules | undefined;
    if (!full && opts.verify === true) {
      // The periodic check: cheap when nothing drifted, a full rewrite when something did.
      saved = await this.saved();
      if (!matchesSaved(this.current as RuleSet, saved)) full = true;
      else saved = undefined;
    }
    if (full) saved ??= await this.saved();
    const work = restoreInput(desired, full ? undefined : this.current, saved);
    if (work !== undefined) {
      try {
        await this.restore(work.text);
      } catch (err) {
        this.current = undefined;
        throw err;
      }
    }
    this.current = desired;
    return { changed: work?.changed ?? 0, full };
  }

  async close(): Promise<void> {
    this.current = undefined;
    try {
      const text = removalInput(await this.saved());
      if (text !== undefined) await this.restore(text);
    } finally {
      this.shell.close();
    }
  }

  /** Our chains and jumps as the kernel has them now. */
  async saved(): Promise<SavedRules> {
    const nat = await this.shell.run(['iptables-save', '-t', 'nat']);
    const filter = await this.shell.run(['iptables-save', '-t', 'filter']);
    return parseSaved(`${nat.stdout}\n${filter.stdout}`, this.tag);
  }

  private async restore(text: string): Promise<void> {
    await this.shell.run(['iptables-restore', '--noflush', '--wait', '5'], { input: text });
  }
}

/** Why this process cannot program iptables (not root, no iptables), or undefined when it can. */
export async function whyNoKernelRules(commandPrefix?: readonly string[]): Promise<string | undefined> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  try {
    await runCommand(
      ['iptables-save', '-t', 'nat'],
      commandPrefix !== undefined ? { prefix: commandPrefix } : {},
    );
    await runCommand(
      ['iptables-restore', '--version'],
      commandPrefix !== undefined ? { prefix: commandPrefix } : {},
    );
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
