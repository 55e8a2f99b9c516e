/** The scheduler's pure half: the cluster snapshot it decides on, the algorithm, and its explanations. */

export {
  encodeRecord,
  placementAnnotation,
  type RecordedPlacement,
  type RecordedReason,
  type RecordedReasons,
  readPlacement,
  readReasons,
  reasonNodesMax,
  reasonsAnnotation,
  reasonsAnnotationBytesMax,
  reasonsMax,
  recordPlacement,
  recordReasons,
} from './explain.js';
export {
  type Allocatable,
  defaultMemoryRequest,
  defaultMilliCpuRequest,
  nodeAllocatable,
  podNonZeroRequests,
  podRequests,
  type Resources,
  resourcesOf,
} from './resources.js';
export {
  feasibleNodesToFind,
  insufficient,
  maxNodeScore,
  noNodesMessage,
  type Placement,
  Reason,
  reasonHistogram,
  type ScheduleOptions,
  type ScheduleResult,
  type ScorePlugin,
  schedulePod,
  scoreWeights,
  type Unschedulable,
  unschedulableMessage,
  untoleratedTaint,
} from './schedule.js';
export { type NodeInfo, type PodChange, type PodEntry, SchedulerSnapshot } from './snapshot.js';
