/** ff_describe (FCALL_RO): the execution record snapshot. */
import type {
  ResumeReason, SignalMatchMode, SuspensionRecord, SuspensionTimeoutBehavior, WaitpointRecord, WaitpointState,
} from "../signal-types.js";
import type { ExecutionRecord, PublicStateName, StreamMode } from "../types.js";
import { arr, executionKeys, num, ok, pairs, str, type FcallArgs, type Raw } from "./common.js";

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
    suspension: s("phase") === "suspended" ? suspension(s, n) : undefined,
    resumeReason: (s("raidx") !== "" && n("raidx") === n("aidx") ? s("rreason") : "") as ResumeReason,
    waitpoints: waitpoints(arr(r[4])),
    signalCount: n("sigs"),
  };
}

function suspension(s: (k: string) => string, n: (k: string) => number): SuspensionRecord {
  return {
    reasonCode: s("s_reason"),
    suspendedAtMs: n("s_at"),
    timeoutAtMs: n("s_due"),
    onTimeout: s("s_on") as SuspensionTimeoutBehavior,
    mode: s("s_mode") as SignalMatchMode,
    signalNames: s("s_names") === "" ? [] : s("s_names").split(","),
    count: n("s_n"),
    matchedSignals: s("s_sigs") === "" ? 0 : s("s_sigs").split(",").length,
  };
}

/** Fields per waitpoint in the reply. */
const WAITPOINT_FIELDS = 9;

function waitpoints(items: readonly Raw[]): WaitpointRecord[] {
  const out: WaitpointRecord[] = [];
  for (let i = 0; i + WAITPOINT_FIELDS <= items.length; i += WAITPOINT_FIELDS) {
    out.push({
      waitpointId: str(items[i]),
      key: str(items[i + 1]),
      state: str(items[i + 2]) as WaitpointState,
      attemptIndex: num(items[i + 3]),
      createdAtMs: num(items[i + 4]),
      expiresAtMs: num(items[i + 5]),
      signalCount: num(items[i + 6]),
      closedAtMs: num(items[i + 7]),
      closeReason: str(items[i + 8]),
    });
  }
  return out;
}
