/** ff_describe (FCALL_RO): the execution record snapshot. */
import type { ExecutionRecord, PublicStateName, StreamMode } from "../types.js";
import { arr, executionKeys, ok, pairs, type FcallArgs } from "./common.js";

export const FN_DESCRIBE = "ff_describe";

export function buildDescribe(executionId: string, partitions: number): FcallArgs {
  const k = executionKeys(executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [] };
}

export function decodeDescribe(reply: unknown): ExecutionRecord {
  const r = ok(reply, FN_DESCRIBE);
  const f = pairs(arr(r[2]));
  const tags = pairs(arr(r[3]));
  const s = (k: string): string => f[k] ?? "";
  const n = (k: string): number => Number(f[k] ?? 0) || 0;
  return {
    executionId: s("id"),
    namespace: s("ns"),
    lane: s("lane"),
    kind: s("kind"),
    priority: n("prio"),
    state: s("pstate") as PublicStateName,
    lifecyclePhase: s("phase"),
    ownershipState: s("own"),
    eligibilityState: s("elig"),
    blockingReason: s("block"),
    terminalOutcome: s("outcome"),
    attemptState: s("astate"),
    attemptIndex: n("aidx"),
    attemptCount: n("acount"),
    retryCount: n("retries"),
    reclaimCount: n("reclaims"),
    leaseEpoch: n("epoch"),
    leaseExpiresAtMs: n("lexp"),
    workerInstanceId: s("winst"),
    createdAtMs: n("created"),
    startedAtMs: n("started"),
    completedAtMs: n("ended"),
    delayUntilMs: n("delay_until"),
    deadlineAtMs: n("deadline"),
    progressPercent: n("prog_pct"),
    progressMessage: s("prog_msg"),
    failureReason: s("fail_reason"),
    failureCategory: s("fail_cat"),
    cancelReason: s("cancel_reason"),
    cancelledBy: s("cancelled_by"),
    tags,
    requiredCapabilities: s("caps") === "" ? [] : s("caps").split(","),
    hasResult: s("has_result") === "1",
    traceparent: s("tp"),
    tracestate: s("ts"),
    streamMode: (s("smode") || "durable") as StreamMode,
  };
}
