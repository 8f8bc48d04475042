/** ff_delay: releases the lease; the same attempt resumes at `delayUntilMs` (fenced). */
import type { LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, int, ok, type FcallArgs } from "./common.js";

export const FN_DELAY = "ff_delay";

export function buildDelay(fence: LeaseFence, partitions: number, delayUntilMs: number): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [...fenceArgv(fence), int(delayUntilMs)] };
}

export function decodeDelay(reply: unknown): void {
  ok(reply, FN_DELAY);
}
