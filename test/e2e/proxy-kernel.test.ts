/**
 * The service proxy conformance suite in kernel mode (iptables): needs root, iptables and
 * Docker (CI runs as root and installs them); never skipped.
 */
import { describeProxyConformance } from './proxy.conformance.js';

describeProxyConformance({ mode: 'kernel', serviceCidr: '10.99.1.0/24', nodePort: 31001, tag: 'k' });
