/** ff_progress: percent + message on the record (fenced). */
import type { LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, ok, type FcallArgs } from "./common.js";

export const FN_PROGRESS = "ff_progress";

export function buildProgress(fence: LeaseFence, partitions: number, percent: number, message: string): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [...fenceArgv(fence), String(percent), message] };
}

export function decodeProgress(reply: unknown): void {
  ok(reply, FN_PROGRESS);
}
