/** ff_release: undoes a claim whose task was never acknowledged (fenced); same place in line. */
import type { LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, ok, type FcallArgs } from "./common.js";

export const FN_RELEASE = "ff_release";

export function buildRelease(fence: LeaseFence, partitions: number): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return { keys: [k.prefix, k.core], argv: fenceArgv(fence) };
}

export function decodeRelease(reply: unknown): void {
  ok(reply, FN_RELEASE);
}
