/** Leader admission: the port, the master's implementation and the built-in plugins. */

export {
  type AdmissionHost,
  ClusterAdmission,
  type ClusterAdmissionOptions,
  storeReader,
} from './cluster-admission.js';
export type {
  AdmissionPlugin,
  AdmissionRequest,
  AdmissionStore,
  AdmissionVerdict,
  AdmissionView,
  AdmittedWrite,
  Claim,
  LeaderAdmission,
} from './leader-admission.js';
export { ClaimLedger, type ClaimLedgerOptions } from './ledger.js';
export {
  defaultAdmissionPlugins,
  limitRangerPlugin,
  namespaceLifecyclePlugin,
  type QuotaUsageSource,
  ResourceQuotaPlugin,
} from './plugins.js';
export {
  defaultNodePortRange,
  defaultServiceCidr,
  type ServiceAllocatorOptions,
  ServiceAllocatorPlugin,
} from './service-allocator.js';
