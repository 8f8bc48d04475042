import { create } from "@bufbuild/protobuf";
import { AdoptionResultSchema, type AdoptionResult, type ErrorDetail } from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import type { ClaimantIdentity, LeaseFence, RenewResult } from "../engine/types.js";
import { GatewayError, Reason } from "../errors.js";
import { detailOf } from "../rpc/error-table.js";

/** One held lease of a Hello, adopted or not, and its answer for the Welcome. */
export interface Adoption {
  readonly fence: LeaseFence;
  readonly adopted: boolean;
  readonly result: AdoptionResult;
}

/**
 * Adopts the leases a reconnecting worker still holds (Hello.held_leases), in order. A lease whose
 * execution is no longer active answers EXECUTION_NOT_ACTIVE with what committed, as replay
 * reconciliation does: `metadata.state` always, and `outcome` + `epoch` when the execution ended
 * under that very lease (its own complete/fail/cancel committed just before the stream broke), so
 * the worker learns the outcome of an operation whose answer it never got.
 */
export async function adoptHeld(
  engine: EngineBackend, held: readonly LeaseFence[], claimant: ClaimantIdentity, leaseTtlMs: number,
  /** Throws PERMISSION_DENIED for a lease the session may not adopt (another namespace). */
  authorize: (fence: LeaseFence, index: number) => Promise<void> = async () => undefined,
): Promise<Adoption[]> {
  return Promise.all(held.map(async (fence, i): Promise<Adoption> => {
    let r: RenewResult;
    try {
      await authorize(fence, i);
      r = await engine.adopt(fence, claimant, leaseTtlMs);
    } catch (err) {
      const ge = GatewayError.from(err);
      if (ge.reason === Reason.PERMISSION_DENIED) return refused(fence, detailOf(ge));
      r = { executionId: fence.executionId, renewed: false, leaseExpiresAtMs: 0, reason: ge.reason === "NOT_FOUND" ? "NOT_FOUND" : "STALE_LEASE" };
    }
    if (r.renewed) {
      return { fence, adopted: true, result: create(AdoptionResultSchema, { executionId: fence.executionId, adopted: true, leaseExpiresAtMs: BigInt(Math.max(0, r.leaseExpiresAtMs)) }) };
    }
    const reason = r.reason ?? Reason.STALE_LEASE;
    const metadata = reason === Reason.EXECUTION_NOT_ACTIVE ? await committed(engine, fence) : {};
    return refused(fence, detailOf(new GatewayError(reason, `lease not adopted: ${reason}`, "", metadata)));
  }));
}

function refused(fence: LeaseFence, error: ErrorDetail): Adoption {
  return { fence, adopted: false, result: create(AdoptionResultSchema, { executionId: fence.executionId, adopted: false, error }) };
}

/** What the execution is now; with its outcome when it ended under `fence`'s lease. Empty when unreadable. */
async function committed(engine: EngineBackend, fence: LeaseFence): Promise<Record<string, string>> {
  try {
    const rec = await engine.describe(fence.executionId);
    if (rec.leaseEpoch !== fence.leaseEpoch) return { state: rec.state };
    return { state: rec.state, outcome: rec.terminalOutcome, epoch: String(rec.leaseEpoch) };
  } catch {
    return {};
  }
}
