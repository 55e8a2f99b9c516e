/** Public surface of `cli/`: the `cox` command and its client of the masters. */

export { type ApplyOutcome, applyObject } from './apply.js';
export {
  type ClientLimits,
  ConnectionError,
  CoxClient,
  type CoxClientOptions,
  clientLimits,
} from './client.js';
export { describeError, ManifestError, UsageError } from './errors.js';
export { type CliApi, type CliDeps, runCox } from './main.js';
export { type ManifestObject, parseManifests, readManifests } from './manifests.js';
export { defaultConfigPath, resolveServers } from './servers.js';
