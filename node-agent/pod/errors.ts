/** Expected failures of the pure pod logic. Broken invariants are assertions, not these. */

/**
 * A container cannot be configured from the pod spec and the objects it refers to (a missing
 * ConfigMap, an unknown port name...). The agent reports it as the container's waiting reason
 * `CreateContainerConfigError` with `message` as the waiting message.
 */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
  readonly code = 'CreateContainerConfigError';
  /** The field path, e.g. `spec.containers[0].env[2].valueFrom.configMapKeyRef`. */
  readonly field: string;
  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.field = field;
  }
}
