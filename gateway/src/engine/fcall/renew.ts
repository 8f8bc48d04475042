/** ff_renew: renews (or adopts) the leases of ONE partition in one call. */
import type { ClaimantIdentity, LeaseFence, LeaseLossReason, RenewResult } from "../types.js";
import { arr, executionKeys, fenceArgv, int, num, ok, str, type FcallArgs } from "./common.js";

export const FN_RENEW = "ff_renew";

/** All `fences` must be of the same partition. `adopt` rebinds worker id / instance too. */
export function buildRenew(
  fences: readonly LeaseFence[], partitions: number, sessionId: string, leaseTtlMs: number,
  adopt?: Pick<ClaimantIdentity, "workerId" | "workerInstanceId">,
): FcallArgs {
  const keys: string[] = [];
  const argv: string[] = [adopt ? "adopt" : "renew", sessionId, int(leaseTtlMs), adopt?.workerId ?? "", adopt?.workerInstanceId ?? ""];
  for (const f of fences) {
    const k = executionKeys(f.executionId, partitions);
    if (keys.length === 0) keys.push(k.prefix);
    else if (keys[0] !== k.prefix) throw new Error("buildRenew: fences of several partitions");
    keys.push(k.core);
    argv.push(...fenceArgv(f));
  }
  return { keys, argv };
}

export function decodeRenew(reply: unknown, fences: readonly LeaseFence[]): RenewResult[] {
  const r = arr(ok(reply, FN_RENEW));
  const lexp = num(r[2]);
  return fences.map((f, i) => {
    const code = str(r[3 + i]);
    if (code === "OK") return { executionId: f.executionId, renewed: true, leaseExpiresAtMs: lexp };
    return { executionId: f.executionId, renewed: false, leaseExpiresAtMs: 0, reason: code as LeaseLossReason };
  });
}
