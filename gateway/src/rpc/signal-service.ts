import { create } from "@bufbuild/protobuf";
import { DeliverSignalResponseSchema, type DeliverSignalRequest, type DeliverSignalResponse } from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError, Reason } from "../errors.js";
import type { WaitpointKeyring } from "../signals/waitpoint-keyring.js";
import type { GatewayTelemetry } from "../telemetry/gateway-telemetry.js";
import type { CallContext } from "./call-context.js";
import { signalEffect } from "./convert-signals.js";
import type * as v from "./validate.js";
import { deliverSignalRequest, type SignalLimits } from "./validate-signals.js";

/** The one answer to every token that does not verify (no state oracle). */
export function invalidToken(): GatewayError {
  return new GatewayError(Reason.INVALID_TOKEN, "token: invalid, expired or revoked waitpoint token", "token");
}

/** SignalService handlers (transport-independent). */
export class SignalHandlers {
  constructor(
    private readonly engine: EngineBackend,
    private readonly keyring: WaitpointKeyring,
    private readonly limits: v.Limits,
    private readonly signalLimits: SignalLimits,
    private readonly telemetry: GatewayTelemetry,
  ) {}

  /** Checks the token first (no store access), then records the signal. */
  async deliverSignal(req: DeliverSignalRequest, ctx: CallContext): Promise<DeliverSignalResponse> {
    const startMs = Date.now();
    const d = deliverSignalRequest(req, this.limits, this.signalLimits);
    if (!(await this.keyring.verify(d.executionId, d.waitpointId, req.token))) throw invalidToken();
    const out = await this.engine.deliverSignal({
      ...d, payload: req.payload, maxSignals: this.signalLimits.maxSignalsPerExecution,
      traceparent: ctx.traceparent, tracestate: ctx.tracestate,
    });
    this.telemetry.signalDelivered(startMs, {
      executionId: d.executionId, waitpointId: d.waitpointId, name: d.name, effect: out.effect,
      executionTraceparent: out.executionTraceparent, executionTracestate: out.executionTracestate,
      senderTraceparent: ctx.traceparent, senderTracestate: ctx.tracestate,
    });
    return create(DeliverSignalResponseSchema, { effect: signalEffect(out.effect), signalId: out.signalId });
  }
}
