/**
 * API object types with Kubernetes field names and semantics.
 *
 * Covered kinds: Namespace, Node, Pod, ConfigMap, Secret, Service, Endpoints, Event (v1);
 * LimitRange, ResourceQuota (v1); ReplicaSet, Deployment, DaemonSet, StatefulSet,
 * ControllerRevision (apps/v1); Job, CronJob (batch/v1); Lease (coordination.k8s.io/v1);
 * EndpointSlice (discovery.k8s.io/v1).
 * These types describe well-formed objects; input from the wire is `unknown` until
 * `validateObject` accepts it. Timestamps are RFC 3339 strings chosen by the proposer.
 */

import type { LabelSelector } from './labels.js';

/** Kubernetes `OwnerReference`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Kubernetes `ObjectMeta`. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** A number, or a string naming a port or giving a percentage (`25%`). */
export type IntOrString = number | string;

export const Protocol = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];

// ---------------------------------------------------------------- Namespace

export interface NamespaceSpec {
  finalizers?: string[];
}
export interface NamespaceStatus {
  phase?: 'Active' | 'Terminating';
  /** While Terminating: what the namespace controller is waiting for (Kubernetes' deletion conditions). */
  conditions?: Condition[];
}
export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
  spec?: NamespaceSpec;
  status?: NamespaceStatus;
}

// ---------------------------------------------------------------- Pod

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  protocol?: Protocol;
}

export interface KeySelector {
  name: string;
  key: string;
  optional?: boolean;
}
/** A field of the pod itself (`metadata.name`, `status.podIP`, ...). */
export interface ObjectFieldSelector {
  apiVersion?: string;
  fieldPath: string;
}
/** A container's resource (`limits.cpu`, `requests.memory`, ...), in units of `divisor`. */
export interface ResourceFieldSelector {
  containerName?: string;
  resource: string;
  divisor?: string;
}
export interface EnvVarSource {
  configMapKeyRef?: KeySelector;
  secretKeyRef?: KeySelector;
  fieldRef?: ObjectFieldSelector;
  resourceFieldRef?: ResourceFieldSelector;
}
/** Every key of a ConfigMap or Secret as an environment variable (`prefix` + key). */
export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvVarSource;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface KeyToPath {
  key: string;
  path: string;
  /** File mode bits (0-0777). */
  mode?: number;
}
export interface Volume {
  name: string;
  emptyDir?: { medium?: '' | 'Memory'; sizeLimit?: string };
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean; defaultMode?: number };
  secret?: { secretName: string; items?: KeyToPath[]; optional?: boolean; defaultMode?: number };
}

export interface HttpGetAction {
  path?: string;
  port: IntOrString;
  host?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: { name: string; value: string }[];
}
export interface TcpSocketAction {
  port: IntOrString;
  host?: string;
}
export interface ExecAction {
  command: string[];
}
/** Exactly one of `exec`, `httpGet`, `tcpSocket`. */
export interface Handler {
  exec?: ExecAction;
  httpGet?: HttpGetAction;
  tcpSocket?: TcpSocketAction;
}
export interface Probe extends Handler {
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}
export interface Lifecycle {
  postStart?: Handler;
  preStop?: Handler;
}

export const PullPolicy = { Always: 'Always', IfNotPresent: 'IfNotPresent', Never: 'Never' } as const;
export type PullPolicy = (typeof PullPolicy)[keyof typeof PullPolicy];

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  ports?: ContainerPort[];
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  resources?: ResourceRequirements;
  volumeMounts?: VolumeMount[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Lifecycle;
  imagePullPolicy?: PullPolicy;
  terminationMessagePath?: string;
}

export const RestartPolicy = { Always: 'Always', OnFailure: 'OnFailure', Never: 'Never' } as const;
export type RestartPolicy = (typeof RestartPolicy)[keyof typeof RestartPolicy];

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: '' | 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

/** Kubernetes `NodeSelectorRequirement`: `Gt`/`Lt` compare integers. */
export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}
/** The requirements of one term are ANDed; `matchFields` supports `metadata.name`. */
export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}
export interface PreferredSchedulingTerm {
  /** 1-100. */
  weight: number;
  preference: NodeSelectorTerm;
}
export interface NodeAffinity {
  /** The terms are ORed: a node must match at least one. */
  requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
  preferredDuringSchedulingIgnoredDuringExecution?: PreferredSchedulingTerm[];
}
/** Pods matching `labelSelector` (in `namespaces`, default the pod's own) on the same `topologyKey` domain. */
export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  namespaces?: string[];
  topologyKey: string;
}
export interface WeightedPodAffinityTerm {
  /** 1-100. */
  weight: number;
  podAffinityTerm: PodAffinityTerm;
}
export interface PodAffinityRules {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
}
export interface Affinity {
  nodeAffinity?: NodeAffinity;
  podAffinity?: PodAffinityRules;
  podAntiAffinity?: PodAffinityRules;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  restartPolicy?: RestartPolicy;
  terminationGracePeriodSeconds?: number;
  /** Seconds after the pod started before its node fails it (reason DeadlineExceeded). */
  activeDeadlineSeconds?: number;
  dnsPolicy?: 'ClusterFirst' | 'Default' | 'None';
  /** Set by the scheduler through a binding, or by the user to run without a scheduler. */
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
  /** Default `default-scheduler`; a pod naming another scheduler is left alone by ours. */
  schedulerName?: string;
  /** The pod's hostname (default its name); StatefulSets set it to the pod name. */
  hostname?: string;
  /** With `hostname`: the pod's DNS name is `hostname.subdomain.namespace.svc.cluster.local`. */
  subdomain?: string;
  /** Service environment variables (`FOO_SERVICE_HOST`, ...) in containers. Default true. */
  enableServiceLinks?: boolean;
}

export const PodPhase = {
  Pending: 'Pending',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Unknown: 'Unknown',
} as const;
export type PodPhase = (typeof PodPhase)[keyof typeof PodPhase];

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: {
    exitCode: number;
    reason?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
  };
}
export interface ContainerStatus {
  name: string;
  image: string;
  imageID?: string;
  containerID?: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  state?: ContainerState;
  lastState?: ContainerState;
}

export interface PodStatus {
  phase?: PodPhase;
  conditions?: Condition[];
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  startTime?: string;
  qosClass?: 'Guaranteed' | 'Burstable' | 'BestEffort';
  reason?: string;
  message?: string;
  nominatedNodeName?: string;
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: PodStatus;
}

export interface PodTemplateSpec {
  metadata?: ObjectMeta;
  spec: PodSpec;
}

// ---------------------------------------------------------------- ConfigMap, Secret

export interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  data?: Record<string, string>;
  /** Values are base64. */
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

export interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ObjectMeta;
  type?: string;
  /** Values are base64. */
  data?: Record<string, string>;
  /** Write-only convenience: plain values merged into `data`. */
  stringData?: Record<string, string>;
  immutable?: boolean;
}

// ---------------------------------------------------------------- Service

export const ServiceType = { ClusterIP: 'ClusterIP', NodePort: 'NodePort' } as const;
export type ServiceType = (typeof ServiceType)[keyof typeof ServiceType];

export interface ServicePort {
  name?: string;
  protocol?: Protocol;
  port: number;
  targetPort?: IntOrString;
  nodePort?: number;
}

export interface ServiceSpec {
  type?: ServiceType;
  /** An IP, `None` for a headless service, or absent to have one allocated. */
  clusterIP?: string;
  ports?: ServicePort[];
  selector?: Record<string, string>;
  sessionAffinity?: 'None' | 'ClientIP';
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: ServiceSpec;
  status?: Record<string, never>;
}

// ---------------------------------------------------------------- ReplicaSet, Deployment

export interface ReplicaSetSpec {
  replicas?: number;
  minReadySeconds?: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
}
export interface ReplicaSetStatus {
  replicas: number;
  fullyLabeledReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  observedGeneration?: number;
  conditions?: Condition[];
}
export interface ReplicaSet {
  apiVersion: 'apps/v1';
  kind: 'ReplicaSet';
  metadata: ObjectMeta;
  spec: ReplicaSetSpec;
  status?: ReplicaSetStatus;
}

export interface RollingUpdateDeployment {
  maxSurge?: IntOrString;
  maxUnavailable?: IntOrString;
}
export type DeploymentStrategy =
  | { type: 'RollingUpdate'; rollingUpdate?: RollingUpdateDeployment }
  | { type: 'Recreate' };

export interface DeploymentSpec {
  replicas?: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
  strategy?: DeploymentStrategy;
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  paused?: boolean;
}
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: Condition[];
  collisionCount?: number;
}
export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: DeploymentSpec;
  status?: DeploymentStatus;
}

// ---------------------------------------------------------------- DaemonSet, StatefulSet

export interface RollingUpdateDaemonSet {
  maxUnavailable?: IntOrString;
  maxSurge?: IntOrString;
}
export type DaemonSetUpdateStrategy =
  | { type: 'RollingUpdate'; rollingUpdate?: RollingUpdateDaemonSet }
  | { type: 'OnDelete' };

export interface DaemonSetSpec {
  selector: LabelSelector;
  template: PodTemplateSpec;
  updateStrategy?: DaemonSetUpdateStrategy;
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
}
export interface DaemonSetStatus {
  currentNumberScheduled: number;
  numberMisscheduled: number;
  desiredNumberScheduled: number;
  numberReady: number;
  observedGeneration?: number;
  updatedNumberScheduled?: number;
  numberAvailable?: number;
  numberUnavailable?: number;
  collisionCount?: number;
  conditions?: Condition[];
}
export interface DaemonSet {
  apiVersion: 'apps/v1';
  kind: 'DaemonSet';
  metadata: ObjectMeta;
  spec: DaemonSetSpec;
  status?: DaemonSetStatus;
}

export const PodManagementPolicy = { OrderedReady: 'OrderedReady', Parallel: 'Parallel' } as const;
export type PodManagementPolicy = (typeof PodManagementPolicy)[keyof typeof PodManagementPolicy];

export interface RollingUpdateStatefulSetStrategy {
  /** Pods with an ordinal >= partition are updated; lower ones keep the old revision. */
  partition?: number;
  maxUnavailable?: IntOrString;
}
export type StatefulSetUpdateStrategy =
  | { type: 'RollingUpdate'; rollingUpdate?: RollingUpdateStatefulSetStrategy }
  | { type: 'OnDelete' };

export interface StatefulSetSpec {
  replicas?: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
  /** The headless Service that gives the pods their stable DNS names. */
  serviceName?: string;
  podManagementPolicy?: PodManagementPolicy;
  updateStrategy?: StatefulSetUpdateStrategy;
  revisionHistoryLimit?: number;
  minReadySeconds?: number;
}
export interface StatefulSetStatus {
  replicas: number;
  observedGeneration?: number;
  readyReplicas?: number;
  currentReplicas?: number;
  updatedReplicas?: number;
  availableReplicas?: number;
  currentRevision?: string;
  updateRevision?: string;
  collisionCount?: number;
  conditions?: Condition[];
}
export interface StatefulSet {
  apiVersion: 'apps/v1';
  kind: 'StatefulSet';
  metadata: ObjectMeta;
  spec: StatefulSetSpec;
  status?: StatefulSetStatus;
}

// ---------------------------------------------------------------- Job

export const CompletionMode = { NonIndexed: 'NonIndexed', Indexed: 'Indexed' } as const;
export type CompletionMode = (typeof CompletionMode)[keyof typeof CompletionMode];

/** Matches a failed pod by the exit codes of its terminated containers (non-zero codes only). */
export interface PodFailurePolicyOnExitCodesRequirement {
  /** Only this container's exit code; default: any container. */
  containerName?: string;
  operator: 'In' | 'NotIn';
  /** 1-255 distinct codes, ascending; `In` may not list 0. */
  values: number[];
}
/** Matches a failed pod by one of its conditions (`status` default `True`). */
export interface PodFailurePolicyOnPodConditionsPattern {
  type: string;
  status?: 'True' | 'False' | 'Unknown';
}
export const PodFailurePolicyAction = { FailJob: 'FailJob', Ignore: 'Ignore', Count: 'Count' } as const;
export type PodFailurePolicyAction = (typeof PodFailurePolicyAction)[keyof typeof PodFailurePolicyAction];
/** Exactly one of `onExitCodes` and `onPodConditions`. */
export interface PodFailurePolicyRule {
  action: PodFailurePolicyAction;
  onExitCodes?: PodFailurePolicyOnExitCodesRequirement;
  onPodConditions?: PodFailurePolicyOnPodConditionsPattern[];
}
/** Rules tried in order on each failed pod; the first match decides (no match: Count). */
export interface PodFailurePolicy {
  rules: PodFailurePolicyRule[];
}

export interface JobSpec {
  parallelism?: number;
  /** Absent: the Job succeeds when any pod succeeds and the others have finished (work queue). */
  completions?: number;
  completionMode?: CompletionMode;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  suspend?: boolean;
  /** Absent on create: generated by the proposer from the Job's uid (not by `applyDefaults`). */
  selector?: LabelSelector;
  manualSelector?: boolean;
  /** Requires the template's `restartPolicy` to be `Never`. */
  podFailurePolicy?: PodFailurePolicy;
  /** Its pod spec's `restartPolicy` must be `OnFailure` or `Never`. */
  template: PodTemplateSpec;
}
export interface JobCondition extends Condition {
  lastProbeTime?: string;
}
export interface JobStatus {
  active?: number;
  succeeded?: number;
  failed?: number;
  ready?: number;
  conditions?: JobCondition[];
  startTime?: string;
  completionTime?: string;
  /** Indexed Jobs: completed indexes as ranges, e.g. `1,3-5,7`. */
  completedIndexes?: string;
  /**
   * Finished pods (uids) the controller has seen but not yet added to `succeeded`/`failed`:
   * recorded before their tracking finalizer is removed, so each pod is counted exactly once.
   */
  uncountedTerminatedPods?: { succeeded?: string[]; failed?: string[] };
}
export interface Job {
  apiVersion: 'batch/v1';
  kind: 'Job';
  metadata: ObjectMeta;
  spec: JobSpec;
  status?: JobStatus;
}

// ---------------------------------------------------------------- Node

export const TaintEffect = {
  NoSchedule: 'NoSchedule',
  PreferNoSchedule: 'PreferNoSchedule',
  NoExecute: 'NoExecute',
} as const;
export type TaintEffect = (typeof TaintEffect)[keyof typeof TaintEffect];

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
  /** When a NoExecute taint was added. */
  timeAdded?: string;
}
export interface NodeSpec {
  podCIDR?: string;
  podCIDRs?: string[];
  unschedulable?: boolean;
  taints?: Taint[];
  providerID?: string;
}

export const NodeAddressType = {
  Hostname: 'Hostname',
  InternalIP: 'InternalIP',
  ExternalIP: 'ExternalIP',
  InternalDNS: 'InternalDNS',
  ExternalDNS: 'ExternalDNS',
} as const;
export type NodeAddressType = (typeof NodeAddressType)[keyof typeof NodeAddressType];

export interface NodeAddress {
  type: NodeAddressType;
  address: string;
}
export interface NodeCondition extends Condition {
  lastHeartbeatTime?: string;
}
export interface NodeSystemInfo {
  machineID?: string;
  systemUUID?: string;
  bootID?: string;
  kernelVersion?: string;
  osImage?: string;
  containerRuntimeVersion?: string;
  kubeletVersion?: string;
  kubeProxyVersion?: string;
  operatingSystem?: string;
  architecture?: string;
}
export interface NodeStatus {
  /** Resource name to quantity (`cpu: '2'`, `memory: 4Gi`, `pods: '110'`). */
  capacity?: Record<string, string>;
  /** What pods may use; defaults to `capacity`. */
  allocatable?: Record<string, string>;
  conditions?: NodeCondition[];
  addresses?: NodeAddress[];
  nodeInfo?: NodeSystemInfo;
}
export interface Node {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: ObjectMeta;
  spec?: NodeSpec;
  status?: NodeStatus;
}

// ---------------------------------------------------------------- Endpoints

/** Kubernetes `ObjectReference`: a pointer to another object, possibly to a field in it. */
export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: ObjectReference;
}
export interface EndpointPort {
  /** Required when a subset has more than one port; matches the Service port's name. */
  name?: string;
  port: number;
  protocol?: Protocol;
}
/** Every address in a subset serves every port of it. */
export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}
export interface Endpoints {
  apiVersion: 'v1';
  kind: 'Endpoints';
  metadata: ObjectMeta;
  subsets?: EndpointSubset[];
}

// ---------------------------------------------------------------- Event

export const EventType = { Normal: 'Normal', Warning: 'Warning' } as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export interface EventSource {
  component?: string;
  host?: string;
}
export interface Event {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: ObjectMeta;
  /** The object this event is about; its namespace must be the event's (or empty, then the event lives in `default`). */
  involvedObject: ObjectReference;
  /** Short, machine-readable, UpperCamelCase (`FailedScheduling`). */
  reason?: string;
  message?: string;
  type?: EventType;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  source?: EventSource;
  reportingComponent?: string;
  reportingInstance?: string;
}

// ---------------------------------------------------------------- Lease

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** RFC 3339 with microseconds, as Kubernetes' MicroTime. */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: ObjectMeta;
  spec?: LeaseSpec;
}

// ---------------------------------------------------------------- CronJob

export const ConcurrencyPolicy = { Allow: 'Allow', Forbid: 'Forbid', Replace: 'Replace' } as const;
export type ConcurrencyPolicy = (typeof ConcurrencyPolicy)[keyof typeof ConcurrencyPolicy];

export interface CronJobSpec {
  /** Five cron fields (`0 3 * * 1-5`, steps as `*\/5`) or a macro (`@hourly`), in UTC unless `timeZone` is set. */
  schedule: string;
  timeZone?: string;
  concurrencyPolicy?: ConcurrencyPolicy;
  suspend?: boolean;
  /** A run missed by more than this is skipped. */
  startingDeadlineSeconds?: number;
  successfulJobsHistoryLimit?: number;
  failedJobsHistoryLimit?: number;
  jobTemplate: { metadata?: ObjectMeta; spec: JobSpec };
}
export interface CronJobStatus {
  active?: ObjectReference[];
  lastScheduleTime?: string;
  lastSuccessfulTime?: string;
}
export interface CronJob {
  apiVersion: 'batch/v1';
  kind: 'CronJob';
  metadata: ObjectMeta;
  spec: CronJobSpec;
  status?: CronJobStatus;
}

// ---------------------------------------------------------------- ControllerRevision

/** An immutable snapshot of a DaemonSet's or StatefulSet's pod template, numbered per owner. */
export interface ControllerRevision {
  apiVersion: 'apps/v1';
  kind: 'ControllerRevision';
  metadata: ObjectMeta;
  /** The owner's patch that recreates this revision (its `spec.template`). */
  data?: unknown;
  revision: number;
}

// ---------------------------------------------------------------- LimitRange, ResourceQuota

export interface LimitRangeItem {
  type: 'Container' | 'Pod';
  max?: Record<string, string>;
  min?: Record<string, string>;
  /** Container limits when a container sets none. */
  default?: Record<string, string>;
  /** Container requests when a container sets none (default: `default`, else the limit). */
  defaultRequest?: Record<string, string>;
  maxLimitRequestRatio?: Record<string, string>;
}
export interface LimitRange {
  apiVersion: 'v1';
  kind: 'LimitRange';
  metadata: ObjectMeta;
  spec: { limits: LimitRangeItem[] };
}

export const ResourceQuotaScope = {
  Terminating: 'Terminating',
  NotTerminating: 'NotTerminating',
  BestEffort: 'BestEffort',
  NotBestEffort: 'NotBestEffort',
} as const;
export type ResourceQuotaScope = (typeof ResourceQuotaScope)[keyof typeof ResourceQuotaScope];

export interface ResourceQuota {
  apiVersion: 'v1';
  kind: 'ResourceQuota';
  metadata: ObjectMeta;
  spec: {
    /**
     * Resource name to quantity: `requests.cpu` (or `cpu`), `requests.memory` (or `memory`),
     * `limits.cpu`, `limits.memory`, `pods`, and object counts `count/<plural>` or the
     * classic `services`, `configmaps`, `secrets`, `replicationcontrollers`.
     */
    hard?: Record<string, string>;
    scopes?: ResourceQuotaScope[];
  };
  status?: { hard?: Record<string, string>; used?: Record<string, string> };
}

// ---------------------------------------------------------------- EndpointSlice

export interface EndpointConditions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}
export interface SliceEndpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  hostname?: string;
  nodeName?: string;
  targetRef?: ObjectReference;
}
export interface SlicePort {
  name?: string;
  port?: number;
  protocol?: Protocol;
}
export interface EndpointSlice {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: SliceEndpoint[];
  ports?: SlicePort[];
}

// ---------------------------------------------------------------- registry

/** Every kind this module knows. */
export type ApiObject =
  | Namespace
  | Node
  | Pod
  | ConfigMap
  | Secret
  | Service
  | Endpoints
  | Event
  | ReplicaSet
  | Deployment
  | DaemonSet
  | StatefulSet
  | Job
  | CronJob
  | Lease
  | ControllerRevision
  | LimitRange
  | ResourceQuota
  | EndpointSlice;
export type Kind = ApiObject['kind'];

/** The `apiVersion` of each known kind, and whether it lives in a namespace. */
export const kindInfo: Readonly<Record<Kind, { readonly apiVersion: string; readonly namespaced: boolean }>> =
  {
    Namespace: { apiVersion: 'v1', namespaced: false },
    Node: { apiVersion: 'v1', namespaced: false },
    Pod: { apiVersion: 'v1', namespaced: true },
    ConfigMap: { apiVersion: 'v1', namespaced: true },
    Secret: { apiVersion: 'v1', namespaced: true },
    Service: { apiVersion: 'v1', namespaced: true },
    Endpoints: { apiVersion: 'v1', namespaced: true },
    Event: { apiVersion: 'v1', namespaced: true },
    ReplicaSet: { apiVersion: 'apps/v1', namespaced: true },
    Deployment: { apiVersion: 'apps/v1', namespaced: true },
    DaemonSet: { apiVersion: 'apps/v1', namespaced: true },
    StatefulSet: { apiVersion: 'apps/v1', namespaced: true },
    Job: { apiVersion: 'batch/v1', namespaced: true },
    CronJob: { apiVersion: 'batch/v1', namespaced: true },
    Lease: { apiVersion: 'coordination.k8s.io/v1', namespaced: true },
    ControllerRevision: { apiVersion: 'apps/v1', namespaced: true },
    LimitRange: { apiVersion: 'v1', namespaced: true },
    ResourceQuota: { apiVersion: 'v1', namespaced: true },
    EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', namespaced: true },
  };

export function isKnownKind(kind: unknown): kind is Kind {
  return typeof kind === 'string' && Object.hasOwn(kindInfo, kind);
}
