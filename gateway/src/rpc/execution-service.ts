import { create } from "@bufbuild/protobuf";
import {
  CancelExecutionResponseSchema, CreateExecutionResponseSchema, CreateExecutionsResponseSchema, DescribeExecutionResponseSchema,
  GetResultResponseSchema, ResumeExecutionResponseSchema,
  type CancelExecutionRequest, type CancelExecutionResponse, type CreateExecutionRequest, type CreateExecutionResponse,
  type CreateExecutionsRequest, type CreateExecutionsResponse, type DescribeExecutionRequest, type DescribeExecutionResponse,
  type GetResultRequest, type GetResultResponse, type ResumeExecutionRequest, type ResumeExecutionResponse,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError } from "../errors.js";
import { executionInfo, publicState } from "./convert.js";
import type { CallContext } from "./call-context.js";
import * as v from "./validate.js";

const MAX_BATCH = 1000;

/** ExecutionService handlers (transport-independent). */
export class ExecutionHandlers {
  constructor(private readonly engine: EngineBackend, private readonly limits: v.Limits) {}

  async createExecution(req: CreateExecutionRequest, ctx: CallContext): Promise<CreateExecutionResponse> {
    const spec = v.createSpec(req, "", this.limits, ctx.traceparent, ctx.tracestate);
    const [out] = await this.engine.create([spec]);
    if (!out) throw new GatewayError("INTERNAL", "create returned no result");
    return create(CreateExecutionResponseSchema, { executionId: out.executionId, duplicate: out.duplicate, state: publicState(out.state) });
  }

  async createExecutions(req: CreateExecutionsRequest, ctx: CallContext): Promise<CreateExecutionsResponse> {
    if (req.executions.length === 0) throw GatewayError.invalid("executions", "must not be empty");
    if (req.executions.length > MAX_BATCH) throw GatewayError.invalid("executions", `at most ${MAX_BATCH} per call`);
    const specs = req.executions.map((r, i) => v.createSpec(r, `executions[${i}]`, this.limits, ctx.traceparent, ctx.tracestate));
    const outs = await this.engine.create(specs);
    return create(CreateExecutionsResponseSchema, {
      results: outs.map((o) => create(CreateExecutionResponseSchema, { executionId: o.executionId, duplicate: o.duplicate, state: publicState(o.state) })),
    });
  }

  async describeExecution(req: DescribeExecutionRequest): Promise<DescribeExecutionResponse> {
    const id = v.executionIdOf(req.executionId, "execution_id", this.limits);
    return create(DescribeExecutionResponseSchema, { execution: executionInfo(await this.engine.describe(id)) });
  }

  async getResult(req: GetResultRequest): Promise<GetResultResponse> {
    const id = v.executionIdOf(req.executionId, "execution_id", this.limits);
    const r = await this.engine.getResult(id);
    return create(GetResultResponseSchema, {
      state: publicState(r.state),
      ...(r.result !== undefined ? { result: r.result } : {}),
      failureReason: r.failureReason,
      failureCategory: r.failureCategory,
    });
  }

  async cancelExecution(req: CancelExecutionRequest, ctx: CallContext): Promise<CancelExecutionResponse> {
    const id = v.executionIdOf(req.executionId, "execution_id", this.limits);
    const reason = v.maxBytes(req.reason, "reason", 4096);
    const out = await this.engine.cancelByOperator(id, reason, ctx.principal);
    return create(CancelExecutionResponseSchema, { state: publicState(out.state), cancelled: out.cancelled });
  }

  async resumeExecution(req: ResumeExecutionRequest): Promise<ResumeExecutionResponse> {
    const id = v.executionIdOf(req.executionId, "execution_id", this.limits);
    await this.engine.resume(id);
    return create(ResumeExecutionResponseSchema, { state: publicState("waiting") });
  }
}
