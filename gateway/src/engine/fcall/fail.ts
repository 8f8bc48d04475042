/** ff_fail: retry with backoff or terminal failure (fenced, replay-reconciled). */
import type { FailResult, LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, num, ok, str, type FcallArgs } from "./common.js";

export const FN_FAIL = "ff_fail";

export function buildFail(fence: LeaseFence, partitions: number, reason: string, category: string, jitterSample: number): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [...fenceArgv(fence), reason, category, String(jitterSample)] };
}

export function decodeFail(reply: unknown): FailResult {
  const r = ok(reply, FN_FAIL);
  return {
    outcome: str(r[2]) === "failed" ? "failed" : "retry_scheduled",
    retryAtMs: num(r[3]),
    retryCount: num(r[4]),
    reconciled: num(r[5]) === 1,
  };
}
