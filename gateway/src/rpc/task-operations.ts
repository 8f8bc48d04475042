import { create } from "@bufbuild/protobuf";
import {
  type AppendFrameRequest, type AppendFrameResponse, AppendFrameResponseSchema, type CancelTaskRequest, type CancelTaskResponse,
  CancelTaskResponseSchema, type CompleteTaskRequest, type CompleteTaskResponse, CompleteTaskResponseSchema,
  type DelayTaskRequest, type DelayTaskResponse, DelayTaskResponseSchema, FailOutcome, type FailTaskRequest,
  type FailTaskResponse, FailTaskResponseSchema, type OperationBody, type OperationKind, type OperationRequest,
  type OperationResponse, type RenewLeaseRequest, type RenewLeaseResponse, RenewLeaseResponseSchema, type UpdateProgressRequest,
  type UpdateProgressResponse, UpdateProgressResponseSchema, type WorkerOperation,
  type CreateWaitpointRequest, type CreateWaitpointResponse, type ResumeSignalsRequest, type ResumeSignalsResponse,
  type SuspendTaskRequest, type SuspendTaskResponse,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError } from "../errors.js";
import { GatewayMetrics } from "../telemetry/gateway-metrics.js";
import type { SuspensionOperations } from "./suspension-operations.js";
import * as v from "./validate.js";

/**
 * One handler per worker operation of the table (sdk-ts/src/transport/worker-operations.ts),
 * named after its Session case. `field` prefixes the field paths of validation errors (the Session
 * case's proto field name on the stream, empty for the unary mirrors).
 */
export type OperationHandlers = {
  readonly [K in OperationKind]: (request: OperationRequest<K>, field?: string) => Promise<OperationResponse<K>>;
};

/**
 * Runs the handler of one operation — the one dispatch the Session stream and both listeners'
 * unary mirrors share. `field`: see {@link OperationHandlers}.
 */
export function runOperation<K extends OperationKind>(handlers: OperationHandlers, body: { readonly case: K; readonly value: OperationRequest<K> }, field = ""): Promise<OperationResponse<K>> {
  return handlers[body.case](body.value, field);
}

/** The unary `WorkerService` mirror of `op`, for the listeners (no field prefix). */
export function unaryMirror(handlers: OperationHandlers, op: WorkerOperation): (request: OperationBody["value"]) => Promise<OperationResponse<OperationKind>> {
  return (request) => runOperation(handlers, { case: op.kind, value: request } as OperationBody);
}

/**
 * The worker task operations, shared by the Session stream and the unary WorkerService mirrors.
 * Each validates its request, makes one engine call, and builds the response.
 */
export class TaskOperations implements OperationHandlers {
  constructor(
    private readonly engine: EngineBackend,
    private readonly limits: v.Limits,
    private readonly leaseTtlMs: number,
    /** Suspend, create waitpoint, resume signals (rpc/suspension-operations.ts). */
    private readonly suspension: SuspensionOperations,
    private readonly sessionIdForUnary = "unary",
    private readonly metrics: GatewayMetrics = new GatewayMetrics(),
  ) {}

  suspend(req: SuspendTaskRequest, field = ""): Promise<SuspendTaskResponse> {
    return this.suspension.suspend(req, (name) => prefix(field, name));
  }

  createWaitpoint(req: CreateWaitpointRequest, field = ""): Promise<CreateWaitpointResponse> {
    return this.suspension.createWaitpoint(req, (name) => prefix(field, name));
  }

  resumeSignals(req: ResumeSignalsRequest, field = ""): Promise<ResumeSignalsResponse> {
    return this.suspension.resumeSignals(req, (name) => prefix(field, name));
  }

  async renewLease(req: RenewLeaseRequest, field = ""): Promise<RenewLeaseResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    const [result] = await this.engine.renew([fence], this.sessionIdForUnary, this.leaseTtlMs);
    if (!result?.renewed) {
      this.metrics.leaseRenewalFailures.add(1);
      const reason = result?.reason ?? "STALE_LEASE";
      throw new GatewayError(reason, `lease not renewed: ${reason}`);
    }
    this.metrics.leaseRenewals.add(1);
    return create(RenewLeaseResponseSchema, { leaseExpiresAtMs: BigInt(result.leaseExpiresAtMs) });
  }

  async updateProgress(req: UpdateProgressRequest, field = ""): Promise<UpdateProgressResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    if (!Number.isFinite(req.percent) || req.percent < 0 || req.percent > 100) throw GatewayError.invalid(prefix(field, "percent"), "must be in [0, 100]");
    const message = v.maxBytes(req.message, prefix(field, "message"), 1024);
    await this.engine.progress(fence, req.percent, message);
    return create(UpdateProgressResponseSchema, {});
  }

  async complete(req: CompleteTaskRequest, field = ""): Promise<CompleteTaskResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    const result = req.result === undefined ? undefined : v.payload(req.result, prefix(field, "result"), this.limits);
    v.traceContext(req, (name) => prefix(field, name));
    const out = await this.engine.complete(fence, result);
    if (!out.reconciled) this.metrics.completions.add(1);
    return create(CompleteTaskResponseSchema, { reconciled: out.reconciled });
  }

  async fail(req: FailTaskRequest, field = ""): Promise<FailTaskResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    const reason = v.maxBytes(req.reason, prefix(field, "reason"), 4096);
    const category = v.failureCategory(req.category, prefix(field, "category"));
    v.traceContext(req, (name) => prefix(field, name));
    const out = await this.engine.fail(fence, reason, category, Math.random());
    if (!out.reconciled) this.metrics.failed(category, out.outcome !== "failed");
    return create(FailTaskResponseSchema, {
      outcome: out.outcome === "failed" ? FailOutcome.FAILED : FailOutcome.RETRY_SCHEDULED,
      retryAtMs: BigInt(Math.max(0, out.retryAtMs)),
      retryCount: out.retryCount,
      reconciled: out.reconciled,
    });
  }

  async cancel(req: CancelTaskRequest, field = ""): Promise<CancelTaskResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    const reason = v.maxBytes(req.reason, prefix(field, "reason"), 4096);
    v.traceContext(req, (name) => prefix(field, name));
    const out = await this.engine.cancelByHolder(fence, reason);
    if (!out.reconciled) this.metrics.cancellations.add(1);
    return create(CancelTaskResponseSchema, { reconciled: out.reconciled });
  }

  /**
   * Appends one output frame. No await precedes the engine call, so appends received in one order
   * are issued (and stored) in that order.
   */
  async appendFrame(req: AppendFrameRequest, field = ""): Promise<AppendFrameResponse> {
    const { fence, frame } = v.appendFrame(req, (name) => prefix(field, name), this.limits);
    const out = await this.engine.appendFrame(fence, frame, this.limits.frames ?? v.DEFAULT_FRAME_LIMITS);
    if (!out.duplicate) this.metrics.framesAppended.add(1);
    return create(AppendFrameResponseSchema, {
      entryId: out.entryId,
      frameCount: BigInt(out.frameCount),
      summaryVersion: BigInt(out.summaryVersion),
      duplicate: out.duplicate,
    });
  }

  async delay(req: DelayTaskRequest, field = ""): Promise<DelayTaskResponse> {
    const fence = v.fence(req.fence, prefix(field, "fence"), this.limits);
    const until = v.timeMs(req.delayUntilMs, prefix(field, "delay_until_ms"));
    await this.engine.delay(fence, until);
    return create(DelayTaskResponseSchema, {});
  }
}

function prefix(field: string, name: string): string {
  return field ? `${field}.${name}` : name;
}
