/** ff_suspend: the holder suspends its attempt until a signal condition is met (fenced). */
import type { SuspendOutcome, SuspendSpec } from "../signal-types.js";
import type { LeaseFence } from "../types.js";
import { executionKeys, fenceArgv, int, num, ok, str, type FcallArgs } from "./common.js";

export const FN_SUSPEND = "ff_suspend";

export function buildSuspend(fence: LeaseFence, partitions: number, spec: SuspendSpec): FcallArgs {
  const k = executionKeys(fence.executionId, partitions);
  return {
    keys: [k.prefix, k.core],
    argv: [
      ...fenceArgv(fence), spec.reasonCode, spec.mode, spec.signalNames.join(","), int(spec.count), int(spec.timeoutAtMs),
      spec.onTimeout, spec.waitpointId, spec.waitpointKey, int(spec.maxWaitpoints),
    ],
  };
}

export function decodeSuspend(reply: unknown): SuspendOutcome {
  const r = ok(reply, FN_SUSPEND);
  return {
    outcome: str(r[2]) as SuspendOutcome["outcome"], waitpointId: str(r[3]), waitpointCount: num(r[4]), timeoutAtMs: num(r[5]),
    reconciled: num(r[6]) === 1,
  };
}
