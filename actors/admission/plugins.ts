/**
 * The built-in leader admission plugins, in Kubernetes' order: NamespaceLifecycle (the
 * namespace exists and is not terminating), LimitRanger (defaults, then min/max/ratio), and
 * ResourceQuota (usage + claims in flight within every quota). The decisions are the pure
 * functions of `core/admission/`; these adapters read the store and hold claims.
 */

import { applyLimitRanges, limitRangerAnnotation } from '../../core/admission/limit-range.js';
import { forbidden, namespaceRejection } from '../../core/admission/namespaces.js';
import {
  type Aggregates,
  addContribution,
  type Contribution,
  checkQuotas,
  quotaUsage,
  usageChange,
} from '../../core/admission/quota.js';
import { QuotaUsageIndex, type UsageStateReader } from '../../core/admission/quota-usage.js';
import type { ResourceAmounts } from '../../core/admission/resources.js';
import { type ApiObject, formatFieldError, type Kind, kindInfo, validateObject } from '../../core/index.js';
import type { LimitRange, Namespace, Pod, ResourceQuota } from '../../core/objects.js';
import { ApiError, ApiErrorCode } from '../api.js';
import type { AdmissionPlugin, AdmissionStore, Claim } from './leader-admission.js';
import { type ServiceAllocatorOptions, ServiceAllocatorPlugin } from './service-allocator.js';

function nameOf(obj: ApiObject): string {
  return obj.metadata.name ?? '';
}

function isNamespaced(kind: Kind): boolean {
  return kindInfo[kind]?.namespaced === true;
}

// ---------------------------------------------------------------- NamespaceLifecycle

/** Creates in a namespace that does not exist (NotFound) or is terminating (Forbidden) are refused. */
export function namespaceLifecyclePlugin(): AdmissionPlugin {
  return {
    name: 'NamespaceLifecycle',
    handles: (op, kind) => op === 'create' && isNamespaced(kind),
    admit: (req, view) => {
      const obj = req.object;
      const namespace = obj.metadata.namespace ?? '';
      const ns = view.store.get('Namespace', '', namespace) as Namespace | undefined;
      const why = namespaceRejection(obj.kind, nameOf(obj), namespace, ns);
      if (why !== undefined) throw new ApiError(ApiErrorCode[why.code], why.message);
      return undefined;
    },
  };
}

// ---------------------------------------------------------------- LimitRanger

/** LimitRange defaults and limits on pods at create. */
export function limitRangerPlugin(): AdmissionPlugin {
  return {
    name: 'LimitRanger',
    handles: (op, kind) => op === 'create' && kind === 'Pod',
    admit: (req, view) => {
      const pod = req.object as Pod;
      const ranges = view.store.list('LimitRange', pod.metadata.namespace ?? '') as LimitRange[];
      if (ranges.length === 0) return undefined;
      const result = applyLimitRanges(pod, ranges);
      const first = result.violations[0];
      if (first !== undefined) {
        const more = result.violations.length - 1;
        throw new ApiError(
          ApiErrorCode.Forbidden,
          forbidden(
            'Pod',
            nameOf(pod),
            `${first.path}: ${first.message} (LimitRange ${first.limitRange})${more > 0 ? `; and ${more} more` : ''}`,
          ),
          { fieldPath: first.path },
        );
      }
      // Defaults may have made a request exceed its limit: the pod as written must be valid.
      const errors = validateObject(result.pod);
      if (errors.length > 0) {
        throw new ApiError(
          ApiErrorCode.Invalid,
          `pod/${JSON.stringify(nameOf(pod)).slice(1, -1)}: ${formatFieldError(errors[0])} (after LimitRange defaults)`,
          { fieldPath: errors[0].path },
        );
      }
      return { object: result.pod };
    },
  };
}

export { limitRangerAnnotation };

// ---------------------------------------------------------------- ResourceQuota

/** What the quota status controller reads: a quota's usage from the applied state. */
export interface QuotaUsageSource {
  /** Usage of each resource in `quota.spec.hard`, from the objects applied in its namespace. */
  usageOf(quota: ResourceQuota): ResourceAmounts;
}

/** A claim's value: the write's usage change. */
type QuotaClaim = [Contribution, 1n | -1n][];

function stateReader(store: AdmissionStore): UsageStateReader {
  const namespaced = (Object.keys(kindInfo) as Kind[]).filter(isNamespaced);
  return {
    quotaCount: (ns) => store.list('ResourceQuota', ns).length,
    *objectsIn(ns) {
      for (const kind of namespaced) yield* store.list(kind, ns);
    },
    namespacesWithQuotas: () => store.namespacesWith('ResourceQuota'),
  };
}

/**
 * Quota admission with incremental usage (only namespaces with quotas are tracked). Every
 * create claims its usage (also where no quota exists yet: a quota created meanwhile must see
 * it), so usage = applied objects + claims of writes in flight, both kept as running sums:
 * a check costs the same whatever the number of objects or of writes in flight.
 */
export class ResourceQuotaPlugin implements AdmissionPlugin, QuotaUsageSource {
  readonly name = 'ResourceQuota';
  readonly index = new QuotaUsageIndex();
  /** Namespace → the aggregates of claims held by writes in flight. */
  private readonly inFlight = new Map<string, Aggregates>();

  handles(op: 'create' | 'update', kind: Kind): boolean {
    return isNamespaced(kind) && (op === 'create' || kind === 'Service');
  }

  admit(req: Parameters<AdmissionPlugin['admit']>[0], view: Parameters<AdmissionPlugin['admit']>[1]) {
    const obj = req.object;
    const namespace = obj.metadata.namespace ?? '';
    const change = usageChange(obj, req.prev);
    if (change === undefined) return undefined;
    const quotas = view.store.list('ResourceQuota', namespace) as ResourceQuota[];
    if (quotas.length > 0) {
      const aggs = this.withClaims(namespace);
      const rejection = checkQuotas({
        object: obj,
        ...(req.prev ? { prev: req.prev } : {}),
        quotas,
        usage: (q) => quotaUsage(q, aggs),
      });
      if (rejection !== undefined) {
        throw new ApiError(ApiErrorCode.Forbidden, forbidden(obj.kind, nameOf(obj), rejection.message));
      }
    }
    return { claims: [{ namespace, value: change satisfies QuotaClaim }] };
  }

  observe(
    changes: Parameters<NonNullable<AdmissionPlugin['observe']>>[0],
    reset: boolean,
    store: AdmissionStore,
  ) {
    const state = stateReader(store);
    if (reset) {
      this.index.rebuild(state);
      return;
    }
    this.index.applyBatch(
      changes.map((c) =>
        c.type === 'DELETED'
          ? { prev: c.prev ?? c.object }
          : { ...(c.prev ? { prev: c.prev } : {}), next: c.object },
      ),
      state,
    );
  }

  usageOf(quota: ResourceQuota): ResourceAmounts {
    return quotaUsage(quota, this.index.aggregates(quota.metadata.namespace ?? '') ?? new Map());
  }

  /** The namespace's applied aggregates plus the claims in flight (a copy). */
  private withClaims(namespace: string): Aggregates {
    const aggs: Aggregates = new Map();
    for (const [k, v] of this.index.aggregates(namespace) ?? []) aggs.set(k, new Map(v));
    for (const [k, v] of this.inFlight.get(namespace) ?? [])
      addContribution(aggs, { aggregate: k, amounts: v }, 1n);
    return aggs;
  }

  claimHeld(claim: Claim): void {
    let aggs = this.inFlight.get(claim.namespace);
    if (aggs === undefined) {
      aggs = new Map();
      this.inFlight.set(claim.namespace, aggs);
    }
    for (const [contribution, sign] of claim.value as QuotaClaim) addContribution(aggs, contribution, sign);
  }

  claimReleased(claim: Claim): void {
    const aggs = this.inFlight.get(claim.namespace);
    if (aggs === undefined) return;
    for (const [contribution, sign] of claim.value as QuotaClaim) {
      addContribution(aggs, contribution, sign === 1n ? -1n : 1n);
    }
    if (aggs.size === 0) this.inFlight.delete(claim.namespace);
  }
}

/**
 * The plugins every master runs, in order; the quota plugin is returned too (its usage feeds
 * the quota controller), and the service allocator (its ranges feed the agents' settings).
 * Allocation runs before the quota so the quota sees the node ports a service gets.
 */
export function defaultAdmissionPlugins(opts: ServiceAllocatorOptions = {}): {
  plugins: AdmissionPlugin[];
  quota: ResourceQuotaPlugin;
  services: ServiceAllocatorPlugin;
} {
  const quota = new ResourceQuotaPlugin();
  const services = new ServiceAllocatorPlugin(opts);
  return { plugins: [namespaceLifecyclePlugin(), limitRangerPlugin(), services, quota], quota, services };
}
