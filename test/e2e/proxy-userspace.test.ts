/**
 * The service proxy conformance suite in userspace mode (the agent's TCP proxy and its DNS on
 * the DNS service IP's port 53, which needs root here; CI runs as root with Docker).
 */
import { describeProxyConformance } from './proxy.conformance.js';

describeProxyConformance({ mode: 'userspace', serviceCidr: '10.99.2.0/24', nodePort: 31002, tag: 'u' });
