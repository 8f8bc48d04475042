import { create } from "@bufbuild/protobuf";
import {
  type ExecutionInfo, ExecutionInfoSchema, FenceSchema, PublicState, type Task, TaskSchema,
} from "@flowfabric/sdk/wire";
import type { ExecutionRecord, Grant, PublicStateName } from "../engine/types.js";
import { suspensionInfo, waitpointInfo } from "./convert-signals.js";
import { streamModeMessage } from "./frames.js";

/** Engine types -> generated messages. */

const PUBLIC_STATE: Readonly<Record<PublicStateName, PublicState>> = {
  waiting: PublicState.WAITING,
  delayed: PublicState.DELAYED,
  rate_limited: PublicState.RATE_LIMITED,
  waiting_children: PublicState.WAITING_CHILDREN,
  active: PublicState.ACTIVE,
  suspended: PublicState.SUSPENDED,
  completed: PublicState.COMPLETED,
  failed: PublicState.FAILED,
  cancelled: PublicState.CANCELLED,
  expired: PublicState.EXPIRED,
  skipped: PublicState.SKIPPED,
};

export function publicState(name: PublicStateName): PublicState {
  return PUBLIC_STATE[name] ?? PublicState.UNSPECIFIED;
}

const u64 = (n: number): bigint => BigInt(Math.max(0, Math.trunc(n)));

export function executionInfo(r: ExecutionRecord): ExecutionInfo {
  return create(ExecutionInfoSchema, {
    executionId: r.executionId,
    namespace: r.namespace,
    lane: r.lane,
    kind: r.kind,
    priority: r.priority,
    state: publicState(r.state),
    lifecyclePhase: r.lifecyclePhase,
    ownershipState: r.ownershipState,
    eligibilityState: r.eligibilityState,
    blockingReason: r.blockingReason,
    terminalOutcome: r.terminalOutcome,
    attemptState: r.attemptState,
    attemptIndex: r.attemptIndex,
    attemptCount: r.attemptCount,
    retryCount: r.retryCount,
    reclaimCount: r.reclaimCount,
    leaseEpoch: u64(r.leaseEpoch),
    leaseExpiresAtMs: u64(r.leaseExpiresAtMs),
    workerInstanceId: r.workerInstanceId,
    createdAtMs: u64(r.createdAtMs),
    startedAtMs: u64(r.startedAtMs),
    completedAtMs: u64(r.completedAtMs),
    delayUntilMs: u64(r.delayUntilMs),
    deadlineAtMs: u64(r.deadlineAtMs),
    progressPercent: r.progressPercent,
    progressMessage: r.progressMessage,
    failureReason: r.failureReason,
    failureCategory: r.failureCategory,
    cancelReason: r.cancelReason,
    cancelledBy: r.cancelledBy,
    tags: { ...r.tags },
    requiredCapabilities: [...r.requiredCapabilities],
    hasResult: r.hasResult,
    streamMode: streamModeMessage(r.streamMode),
    ...(r.suspension !== undefined ? { suspension: suspensionInfo(r.suspension) } : {}),
    waitpoints: r.waitpoints.map(waitpointInfo),
    resumeReason: r.resumeReason,
    signalCount: r.signalCount,
  });
}

export function task(g: Grant): Task {
  return create(TaskSchema, {
    fence: create(FenceSchema, {
      executionId: g.fence.executionId,
      leaseId: g.fence.leaseId,
      leaseEpoch: u64(g.fence.leaseEpoch),
      attemptId: g.fence.attemptId,
    }),
    attemptIndex: g.attemptIndex,
    input: g.input,
    kind: g.kind,
    lane: g.lane,
    namespace: g.namespace,
    tags: { ...g.tags },
    priority: g.priority,
    resumed: g.resumed,
    resumeReason: g.resumeReason,
    retryCount: g.retryCount,
    leaseExpiresAtMs: u64(g.leaseExpiresAtMs),
    createdAtMs: u64(g.createdAtMs),
    deadlineAtMs: u64(g.deadlineAtMs),
    traceparent: g.traceparent,
    tracestate: g.tracestate,
  });
}
