import { create } from "@bufbuild/protobuf";
import { ClaimedTask } from "../../sdk-ts/src/claimed-task.js";
import { TASK_CONTROL } from "../../sdk-ts/src/claimed-task.js";
import { FlowFabricError } from "../../sdk-ts/src/errors.js";
import {
  CompleteTaskResponseSchema, FailOutcome, FailTaskResponseSchema, TaskSchema,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import type { OperationKind, OperationOwner, TaskOperationChannel } from "../../sdk-ts/src/task-operations.js";
import { runTask } from "../../sdk-ts/src/task-runner.js";

/** Answers every operation at once with `answer(kind, request)`. */
class AutoChannel implements TaskOperationChannel {
  readonly retryBackoff = { initialDelayMs: 1, maxDelayMs: 1 };
  readonly calls: { kind: OperationKind; request: Record<string, unknown> }[] = [];
  constructor(private readonly answer: (kind: OperationKind) => unknown = (kind) =>
    kind === "fail" ? create(FailTaskResponseSchema, { outcome: FailOutcome.FAILED }) : create(CompleteTaskResponseSchema)) {}
  submit(_t: OperationOwner, kind: OperationKind, request: unknown): Promise<never> {
    this.calls.push({ kind, request: request as Record<string, unknown> });
    const out = this.answer(kind);
    return (out instanceof Error ? Promise.reject(out) : Promise.resolve(out)) as Promise<never>;
  }
  taskEnded(): void {}
}

const makeTask = (channel: TaskOperationChannel): ClaimedTask =>
  new ClaimedTask(create(TaskSchema, { fence: { executionId: "0:x", leaseId: "l", leaseEpoch: 1n, attemptId: "a" } }), channel);

test("a returned payload completes the task", async () => {
  const channel = new AutoChannel();
  await runTask(makeTask(channel), async () => Buffer.from("out"), () => undefined);
  expect(channel.calls.map((c) => c.kind)).toEqual(["complete"]);
  expect(Buffer.from(channel.calls[0]!.request.result as Uint8Array).toString()).toBe("out");
});

test("returning nothing completes without a result", async () => {
  const channel = new AutoChannel();
  await runTask(makeTask(channel), () => undefined, () => undefined);
  expect(channel.calls[0]!.request.result).toBeUndefined();
});

test("a throw fails the task with the message and category", async () => {
  const channel = new AutoChannel();
  await runTask(makeTask(channel), () => { throw Object.assign(new Error("boom"), { category: "transient" }); }, () => undefined);
  expect(channel.calls).toEqual([{ kind: "fail", request: expect.objectContaining({ reason: "boom", category: "transient" }) }]);
  const other = new AutoChannel();
  await runTask(makeTask(other), () => Promise.reject("plain"), () => undefined);
  expect(other.calls[0]!.request).toMatchObject({ reason: "plain", category: "error" });
});

test("a task the handler settled, lost, or shut down is left alone", async () => {
  const channel = new AutoChannel();
  await runTask(makeTask(channel), async (task) => { await task.cancel("no"); return "ignored"; }, () => undefined);
  expect(channel.calls.map((c) => c.kind)).toEqual(["cancel"]);

  const lost = new AutoChannel();
  await runTask(makeTask(lost), (task) => { task[TASK_CONTROL].lose("cancelled", "operator"); throw new Error("aborted"); }, () => undefined);
  expect(lost.calls).toEqual([]);

  const shut = new AutoChannel();
  await runTask(makeTask(shut), (task) => { task[TASK_CONTROL].shutdown("closing"); throw new Error("aborted"); }, () => undefined);
  expect(shut.calls).toEqual([]);
});

test("a refused completion is reported and the task is failed instead", async () => {
  const tooLarge = new FlowFabricError({ code: "RESOURCE_EXHAUSTED", reason: "PAYLOAD_TOO_LARGE", message: "result too large", field: "result" });
  const channel = new AutoChannel((kind) => (kind === "complete" ? tooLarge : create(FailTaskResponseSchema, { outcome: FailOutcome.FAILED })));
  const reported: FlowFabricError[] = [];
  const task = makeTask(channel);
  await runTask(task, () => new Uint8Array(8), (e) => reported.push(e));
  expect(reported).toEqual([tooLarge]);
  expect(channel.calls.map((c) => c.kind)).toEqual(["complete", "fail"]);
  expect(channel.calls[1]!.request).toMatchObject({ reason: "result too large", category: "error" });
  expect(task.state).toBe("consumed");
});

test("an unanswered completion is retried until answered, never turned into a fail", async () => {
  const down = new FlowFabricError({ code: "UNAVAILABLE", reason: "UNAVAILABLE", message: "store down" });
  let refusals = 3;
  const channel = new AutoChannel((kind) => (kind === "complete" && refusals-- > 0 ? down : create(CompleteTaskResponseSchema)));
  const reported: FlowFabricError[] = [];
  const task = makeTask(channel);
  await runTask(task, () => "the result", (e) => reported.push(e));
  expect(channel.calls.map((c) => c.kind)).toEqual(["complete", "complete", "complete", "complete"]);
  expect(reported).toEqual([]);
  expect(task.state).toBe("consumed");
});
