import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import {
  CreateWaitpointResponseSchema, ResumeSignalsResponseSchema, SuspendOutcome, SuspendTaskResponseSchema,
  type CreateWaitpointRequest, type CreateWaitpointResponse, type ResumeSignalsRequest, type ResumeSignalsResponse,
  type SuspendTaskRequest, type SuspendTaskResponse,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import type { WaitpointKeyring } from "../signals/waitpoint-keyring.js";
import { signalMessage, waitpointToken } from "./convert-signals.js";
import * as v from "./validate.js";
import { createWaitpointRequest, suspendRequest, type SignalLimits } from "./validate-signals.js";

/**
 * The worker's suspension operations (suspend, create waitpoint, resume signals), shared by the
 * Session stream and the unary WorkerService mirrors through TaskOperations. The gateway picks
 * each waitpoint's id and mints its token (never stored) before the FCALL creates it.
 */
export class SuspensionOperations {
  constructor(
    private readonly engine: EngineBackend,
    private readonly keyring: WaitpointKeyring,
    private readonly limits: v.Limits,
    private readonly signalLimits: SignalLimits,
  ) {}

  async suspend(req: SuspendTaskRequest, field: (name: string) => string): Promise<SuspendTaskResponse> {
    const s = suspendRequest(req, field, this.limits);
    const waitpointId = randomUUID();
    const timeoutAtMs = s.timeoutMs > 0 ? Date.now() + s.timeoutMs : 0;
    const token = this.keyring.mint(s.fence.executionId, waitpointId, timeoutAtMs);
    const out = await this.engine.suspend(s.fence, {
      reasonCode: s.reasonCode, mode: s.mode, signalNames: s.signalNames, count: s.count, timeoutAtMs, onTimeout: s.onTimeout,
      waitpointId, waitpointKey: s.waitpointKey, maxWaitpoints: this.signalLimits.maxWaitpointsPerExecution,
    });
    if (out.outcome === "already_satisfied") return create(SuspendTaskResponseSchema, { outcome: SuspendOutcome.ALREADY_SATISFIED });
    // A replay answers the committed suspension: its waitpoint's token is minted again (tokens are
    // a pure function of execution, waitpoint and expiry).
    const minted = out.reconciled ? this.keyring.mint(s.fence.executionId, out.waitpointId, out.timeoutAtMs) : token;
    return create(SuspendTaskResponseSchema, {
      outcome: SuspendOutcome.SUSPENDED, waitpoint: waitpointToken(out.waitpointId, s.waitpointKey, minted, out.timeoutAtMs), reconciled: out.reconciled,
    });
  }

  async createWaitpoint(req: CreateWaitpointRequest, field: (name: string) => string): Promise<CreateWaitpointResponse> {
    const w = createWaitpointRequest(req, field, this.limits, this.signalLimits);
    const waitpointId = randomUUID();
    const expiresAtMs = Date.now() + w.lifetimeMs;
    const token = this.keyring.mint(w.fence.executionId, waitpointId, expiresAtMs);
    await this.engine.createWaitpoint(w.fence, {
      waitpointId, waitpointKey: w.waitpointKey, expiresAtMs, maxWaitpoints: this.signalLimits.maxWaitpointsPerExecution,
    });
    return create(CreateWaitpointResponseSchema, { waitpoint: waitpointToken(waitpointId, w.waitpointKey, token, expiresAtMs) });
  }

  async resumeSignals(req: ResumeSignalsRequest, field: (name: string) => string): Promise<ResumeSignalsResponse> {
    const fence = v.fence(req.fence, field("fence"), this.limits);
    return create(ResumeSignalsResponseSchema, { signals: (await this.engine.resumeSignals(fence)).map(signalMessage) });
  }
}
