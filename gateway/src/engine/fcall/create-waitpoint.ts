/** ff_create_waitpoint: the holder creates a pending waitpoint for its attempt (fenced). */
import type { PendingWaitpointSpec } from "../signal-types.js";
import type { LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, int, ok, type FcallArgs } from "./common.js";

export const FN_CREATE_WAITPOINT = "ff_create_waitpoint";

export function buildCreateWaitpoint(fence: LeaseFence, partitions: number, spec: PendingWaitpointSpec): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return {
    keys: [k.prefix, k.core],
    argv: [...fenceArgv(fence), spec.waitpointId, spec.waitpointKey, int(spec.expiresAtMs), int(spec.maxWaitpoints)],
  };
}

export function decodeCreateWaitpoint(reply: unknown): void {
  ok(reply, FN_CREATE_WAITPOINT);
}
