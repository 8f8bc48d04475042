/** ff_complete: terminal success (fenced, replay-reconciled); the result is passed as bytes. */
import type { CompleteOutcome, LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, num, okFields, type FcallArgs } from "./common.js";

export const FN_COMPLETE = "ff_complete";

export function buildComplete(fence: LeaseFence, partitions: number, result: Uint8Array | undefined): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  const payload = result ? Buffer.from(result.buffer, result.byteOffset, result.byteLength) : "";
  return { keys: [k.prefix, k.core], argv: [...fenceArgv(fence), result ? "1" : "0", payload] };
}

export function decodeComplete(reply: unknown): CompleteOutcome {
  return { reconciled: num(okFields(reply, FN_COMPLETE, ["reconciled"]).reconciled) === 1 };
}
