/** ff_fail: retry with backoff or terminal failure (fenced, replay-reconciled). */
import type { FailResult, LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, num, okFields, str, type FcallArgs } from "./common.js";

export const FN_FAIL = "ff_fail";

export function buildFail(fence: LeaseFence, partitions: number, reason: string, category: string, jitterSample: number): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [...fenceArgv(fence), reason, category, String(jitterSample)] };
}

/** ff_fail's reply after the envelope. */
const REPLY = ["outcome", "retryAtMs", "retryCount", "reconciled"] as const;

export function decodeFail(reply: unknown): FailResult {
  const r = okFields(reply, FN_FAIL, REPLY);
  return {
    outcome: str(r.outcome) === "failed" ? "failed" : "retry_scheduled",
    retryAtMs: num(r.retryAtMs),
    retryCount: num(r.retryCount),
    reconciled: num(r.reconciled) === 1,
  };
}
