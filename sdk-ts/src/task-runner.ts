import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { TASK_CONTROL, type ClaimedTask } from "./claimed-task.js";
import { FlowFabricError } from "./errors.js";
import type { TaskTelemetry } from "./telemetry/task-tracing.js";
import { withSpan } from "./telemetry/trace-context.js";

/** What a task handler may return: the result payload (a string is sent as UTF-8) or nothing. */
export type TaskResult = Uint8Array | string | void | undefined;

/**
 * Runs one task. Return (or resolve) to complete the task with the returned payload; throw to
 * fail it with the error's message and its `category` property (default "error"). A handler
 * may also settle the task itself (`task.complete()`, `task.fail()`, ...).
 */
export type TaskHandler = (task: ClaimedTask) => Promise<TaskResult> | TaskResult;

/** Options of {@link FlowFabricWorker.run}. */
export interface RunOptions {
  /** Called when the automatic complete/fail after the handler fails; default: ignored (see `onEvent`). */
  readonly onSettleError?: (error: FlowFabricError, task: ClaimedTask) => void;
}

/**
 * Runs `handler` on `task` and settles the task unless the handler already did, the lease is
 * lost, or the worker shut the task down (its lease then lapses and the gateway requeues it).
 * Never rejects; settle errors go to `report`. With `telemetry` and a tracer provider in place,
 * all of it runs inside a `flowfabric.task` span (see {@link TaskTelemetry.taskSpan}).
 */
export function runTask(task: ClaimedTask, handler: TaskHandler, report: (error: FlowFabricError) => void, telemetry?: TaskTelemetry): Promise<void> {
  if (telemetry === undefined || !telemetry.tracing) return runAndSettle(task, handler, report, telemetry, undefined);
  // The handler and the settle run inside the task span: user spans nest under it, and the
  // settle request carries its traceparent (the gateway's complete/fail span is its child).
  const { name, options, parent } = telemetry.taskSpan(task);
  return withSpan(telemetry.tracer, name, options, parent, (span) => {
    task[TASK_CONTROL].trace(span);
    return runAndSettle(task, handler, report, telemetry, span);
  });
}

async function runAndSettle(task: ClaimedTask, handler: TaskHandler, report: (error: FlowFabricError) => void, telemetry: TaskTelemetry | undefined, span: Span | undefined): Promise<void> {
  let outcome: { readonly ok: true; readonly value: TaskResult } | { readonly ok: false; readonly error: unknown };
  const startedAt = performance.now();
  try {
    outcome = { ok: true, value: await handler(task) };
  } catch (error) {
    outcome = { ok: false, error };
    if (span !== undefined) {
      span.recordException(error instanceof Error ? error : { message: String(error) });
      span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(error) });
    }
  }
  telemetry?.handlerDone(task, (performance.now() - startedAt) / 1000, outcome.ok);
  if (!shouldSettle(task)) return;
  try {
    if (outcome.ok) {
      const value = outcome.value;
      await task.complete(value instanceof Uint8Array || typeof value === "string" ? value : undefined);
    } else {
      await task.fail(messageOf(outcome.error), categoryOf(outcome.error));
    }
  } catch (error) {
    const ffError = FlowFabricError.fromServiceError(error);
    report(ffError);
    // A refused completion (e.g. PAYLOAD_TOO_LARGE) leaves the task running: fail it instead.
    // An unanswered one never does (complete retries until answered): its result is not lost.
    if (outcome.ok && !ffError.isRetryable && shouldSettle(task)) {
      await task.fail(ffError.message, "error").catch((failError: unknown) => report(FlowFabricError.fromServiceError(failError)));
    }
  }
}

function shouldSettle(task: ClaimedTask): boolean {
  if (task.state !== "running") return false;
  return task[TASK_CONTROL].abortReason()?.kind !== "shutdown";
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function categoryOf(error: unknown): string {
  const category = (error as { category?: unknown } | null)?.category;
  return typeof category === "string" && category !== "" ? category : "error";
}
