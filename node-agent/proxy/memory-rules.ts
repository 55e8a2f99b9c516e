/**
 * The in-memory adapter of the proxy rules port, for unit tests of the proxy actor: it keeps
 * the last plan applied and counts applies. `failNext` makes the next apply reject (as a failed
 * iptables-restore would); `delayMs` makes applies take time (to test coalescing).
 */

import type { ApplyResult, ProxyPlan, ProxyRules } from './rules.js';

export class MemoryProxyRules implements ProxyRules {
  readonly mode = 'memory' as const;
  /** The plan of the last successful apply; undefined before the first and after close. */
  plan: ProxyPlan | undefined;
  applies = 0;
  fullApplies = 0;
  /** Applies asked to check the data path first (the periodic resync). */
  verifies = 0;
  closed = false;
  failNext: Error | undefined;
  delayMs = 0;

  async apply(plan: ProxyPlan, opts: { full?: boolean; verify?: boolean } = {}): Promise<ApplyResult> {
    if (opts.verify === true) this.verifies += 1;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const failure = this.failNext;
    if (failure !== undefined) {
      this.failNext = undefined;
      throw failure;
    }
    const full = opts.full === true || this.plan === undefined;
    this.plan = plan;
    this.applies += 1;
    if (full) this.fullApplies += 1;
    return { changed: plan.servers.length, full };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.plan = undefined;
  }

  /** The backends of the server `id` (`ns/name:port/PROTO`) as `ip:port`, or undefined. */
  backendsOf(id: string): string[] | undefined {
    return this.plan?.servers.find((s) => s.id === id)?.backends.map((b) => `${b.ip}:${b.port}`);
  }
}
