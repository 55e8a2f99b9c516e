/**
 * The userspace proxy of `bench:proxy` in its own process (as it runs in an agent, not sharing
 * the load generator's event loop): applies the plan given as JSON in argv[2], prints `ready`
 * once every listener is bound, and closes on SIGTERM.
 */

import type { ProxyPlan } from '../node-agent/proxy/rules.js';
import { UserspaceProxyRules } from '../node-agent/proxy/userspace-rules.js';

const plan = JSON.parse(process.argv[2] ?? '{"servers":[]}') as ProxyPlan;
const rules = new UserspaceProxyRules({ nodeIp: '127.0.0.1', log: (l) => process.stderr.write(`${l}\n`) });
await rules.apply(plan);
for (let i = 0; i < 500 && !rules.addresses().every((a) => a.listening); i += 1)
  await new Promise((r) => setTimeout(r, 10));
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  rules.close().then(() => process.exit(0));
});
