import { create } from "@bufbuild/protobuf";
import { ClaimedTask, FlowFabricError, UNHEALTHY_AFTER_MISSED_RENEWALS } from "../../sdk-ts/src/index.js";
import { TASK_CONTROL } from "../../sdk-ts/src/claimed-task.js";
import { ErrorCode } from "../../sdk-ts/src/errors.js";
import {
  CancelTaskResponseSchema, CompleteTaskResponseSchema, DelayTaskResponseSchema, FailOutcome, FailTaskResponseSchema,
  RenewLeaseResponseSchema, TaskSchema, UpdateProgressResponseSchema,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import type { OperationKind, OperationOwner, TaskOperationChannel } from "../../sdk-ts/src/task-operations.js";

interface Sent { kind: OperationKind; request: unknown; resolve(response: unknown): void; reject(error: unknown): void }

/** A fake operation channel: records operations; the test answers them. */
class FakeChannel implements TaskOperationChannel {
  readonly retryBackoff = { initialDelayMs: 1, maxDelayMs: 1 };
  readonly sent: Sent[] = [];
  readonly ended: OperationOwner[] = [];
  submit(_task: OperationOwner, kind: OperationKind, request: unknown): Promise<never> {
    return new Promise((resolve, reject) => this.sent.push({ kind, request, resolve: resolve as (r: unknown) => void, reject }));
  }
  taskEnded(task: OperationOwner): void {
    this.ended.push(task);
  }
  last(): Sent {
    const s = this.sent[this.sent.length - 1];
    if (s === undefined) throw new Error("nothing sent");
    return s;
  }
}

function makeTask(): { task: ClaimedTask; channel: FakeChannel } {
  const channel = new FakeChannel();
  const pushed = create(TaskSchema, {
    fence: { executionId: "3:6f1c", leaseId: "lease-1", leaseEpoch: 4n, attemptId: "att-1" },
    attemptIndex: 1, input: Buffer.from("héllo"), kind: "send-email", lane: "mail", namespace: "default",
    tags: { tenant: "acme" }, priority: 7, resumed: false, retryCount: 1, leaseExpiresAtMs: 1_000n, createdAtMs: 5n,
    traceparent: "00-abc-def-01", tracestate: "k=v",
  });
  return { task: new ClaimedTask(pushed, channel), channel };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const operationError = (code: ErrorCode, reason: string): FlowFabricError => new FlowFabricError({ code, reason, message: reason });

test("exposes the pushed task's fields", () => {
  const { task } = makeTask();
  expect(task).toMatchObject({
    executionId: "3:6f1c", attemptIndex: 1, attemptId: "att-1", leaseId: "lease-1", leaseEpoch: 4, executionKind: "send-email",
    laneId: "mail", namespace: "default", priority: 7, resumed: false, retryCount: 1, createdAtMs: 5, deadlineAtMs: 0,
    traceparent: "00-abc-def-01", tracestate: "k=v", state: "running", leaseExpiresAtMs: 1000,
  });
  expect(task.tags).toEqual({ tenant: "acme" });
  expect(task.inputText()).toBe("héllo");
  expect(task.isLeaseHealthy()).toBe(true);
  expect(task.signal.aborted).toBe(false);
});

test("complete sends the fence and result, then consumes the task", async () => {
  const { task, channel } = makeTask();
  const done = task.complete("ok");
  expect(task.state).toBe("settling");
  const sent = channel.last();
  expect(sent.kind).toBe("complete");
  expect(sent.request).toMatchObject({ fence: { executionId: "3:6f1c", leaseId: "lease-1", leaseEpoch: 4n, attemptId: "att-1" } });
  expect(Buffer.from((sent.request as { result: Uint8Array }).result).toString()).toBe("ok");
  sent.resolve(create(CompleteTaskResponseSchema, { reconciled: true }));
  await expect(done).resolves.toEqual({ reconciled: true });
  expect(task.state).toBe("consumed");
  expect(channel.ended).toEqual([task]);
  await expect(task.complete()).rejects.toMatchObject({ reason: "TASK_CONSUMED", code: "FAILED_PRECONDITION" });
  await expect(task.fail("x")).rejects.toMatchObject({ reason: "TASK_CONSUMED" });
  await expect(task.updateProgress(5)).rejects.toMatchObject({ reason: "TASK_CONSUMED" });
  expect(channel.sent).toHaveLength(1);
});

test("complete without a result leaves the optional field unset", async () => {
  const { task, channel } = makeTask();
  const done = task.complete();
  expect((channel.last().request as { result?: Uint8Array }).result).toBeUndefined();
  channel.last().resolve(create(CompleteTaskResponseSchema));
  await done;
});

test("a second terminal call while one is in flight throws TASK_CONSUMED", async () => {
  const { task, channel } = makeTask();
  const first = task.cancel("stop");
  await expect(task.delayExecution(10)).rejects.toMatchObject({ reason: "TASK_CONSUMED" });
  channel.last().resolve(create(CancelTaskResponseSchema));
  await expect(first).resolves.toEqual({ reconciled: false });
});

test("fail maps the outcome", async () => {
  const { task, channel } = makeTask();
  const done = task.fail("boom", "transient");
  expect(channel.last().request).toMatchObject({ reason: "boom", category: "transient" });
  channel.last().resolve(create(FailTaskResponseSchema, { outcome: FailOutcome.RETRY_SCHEDULED, retryAtMs: 123n, retryCount: 2 }));
  await expect(done).resolves.toEqual({ outcome: "retry_scheduled", retryAtMs: 123, retryCount: 2, reconciled: false });

  const other = makeTask();
  const terminal = other.task.fail("bad input");
  expect(other.channel.last().request).toMatchObject({ category: "error" });
  other.channel.last().resolve(create(FailTaskResponseSchema, { outcome: FailOutcome.FAILED, retryCount: 0 }));
  await expect(terminal).resolves.toEqual({ outcome: "failed", retryAtMs: undefined, retryCount: 0, reconciled: false });
});

test("a refused terminal operation that is not definitive returns the task to running", async () => {
  const { task, channel } = makeTask();
  const done = task.complete(new Uint8Array(10));
  channel.last().reject(operationError(ErrorCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE"));
  await expect(done).rejects.toMatchObject({ reason: "PAYLOAD_TOO_LARGE" });
  expect(task.state).toBe("running");
  expect(channel.ended).toEqual([]);
  const fail = task.fail("result too large");
  channel.last().resolve(create(FailTaskResponseSchema, { outcome: FailOutcome.FAILED }));
  await fail;
  expect(task.state).toBe("consumed");
});

test.each(["STALE_LEASE", "LEASE_EXPIRED", "EXECUTION_NOT_ACTIVE", "NOT_FOUND"])("a definitive %s consumes the task", async (reason) => {
  const { task, channel } = makeTask();
  const done = task.delayExecution(Date.now() + 1000);
  channel.last().reject(operationError(ErrorCode.FAILED_PRECONDITION, reason));
  await expect(done).rejects.toMatchObject({ reason });
  expect(task.state).toBe("consumed");
  expect(channel.ended).toEqual([task]);
});

test("lease loss aborts the signal with a reason and makes operations throw LEASE_LOST", async () => {
  const { task, channel } = makeTask();
  expect(task[TASK_CONTROL].lose("lease_lost", "LEASE_EXPIRED")).toBe(true);
  expect(task.state).toBe("lost");
  expect(task.signal.aborted).toBe(true);
  expect(task.signal.reason).toEqual({ kind: "lease_lost", message: "LEASE_EXPIRED" });
  expect(task.isLeaseHealthy()).toBe(false);
  expect(channel.ended).toEqual([task]);
  await expect(task.complete()).rejects.toMatchObject({ reason: "LEASE_LOST", code: "FAILED_PRECONDITION" });
  await expect(task.renewLease()).rejects.toMatchObject({ reason: "LEASE_LOST" });
  expect(channel.sent).toHaveLength(0);
  expect(task[TASK_CONTROL].lose("cancelled", "again")).toBe(false);
});

test("a cancel request aborts with kind cancelled", () => {
  const { task } = makeTask();
  task[TASK_CONTROL].lose("cancelled", "user asked (by operator)");
  expect(task.signal.reason).toEqual({ kind: "cancelled", message: "user asked (by operator)" });
});

test("lease loss while settling waits for the answer", async () => {
  const { task, channel } = makeTask();
  const done = task.complete();
  task[TASK_CONTROL].lose("lease_lost", "STALE_LEASE");
  expect(task.state).toBe("settling");
  expect(task.signal.aborted).toBe(true);
  channel.last().resolve(create(CompleteTaskResponseSchema, { reconciled: true }));
  await expect(done).resolves.toEqual({ reconciled: true });
  expect(task.state).toBe("consumed");

  const other = makeTask();
  const refused = other.task.complete();
  other.task[TASK_CONTROL].lose("lease_lost", "not re-adopted");
  other.channel.last().reject(operationError(ErrorCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE"));
  await expect(refused).rejects.toMatchObject({ reason: "PAYLOAD_TOO_LARGE" });
  expect(other.task.state).toBe("lost");
  expect(other.channel.ended).toEqual([other.task]);
});

test("a non-terminal operation that finds the lease gone marks the task lost", async () => {
  const { task, channel } = makeTask();
  const progress = task.updateProgress(50, "half");
  expect(channel.last()).toMatchObject({ kind: "updateProgress", request: { percent: 50, message: "half" } });
  channel.last().reject(operationError(ErrorCode.FAILED_PRECONDITION, "STALE_LEASE"));
  await expect(progress).rejects.toMatchObject({ reason: "STALE_LEASE" });
  expect(task.state).toBe("lost");
  expect(task.signal.reason).toEqual({ kind: "lease_lost", message: "STALE_LEASE" });
});

test("health: 3 heartbeat periods without renewal make the lease unhealthy; a renewal heals it", async () => {
  const { task, channel } = makeTask();
  const control = task[TASK_CONTROL];
  control.tick(); // the grant counts as a renewal
  expect(task.consecutiveRenewalFailures()).toBe(0);
  for (let i = 1; i <= UNHEALTHY_AFTER_MISSED_RENEWALS; i++) {
    expect(task.isLeaseHealthy()).toBe(true);
    control.tick();
    expect(task.consecutiveRenewalFailures()).toBe(i);
  }
  expect(task.isLeaseHealthy()).toBe(false);
  control.renewed(5000);
  expect(task.isLeaseHealthy()).toBe(true);
  expect(task.consecutiveRenewalFailures()).toBe(0);
  expect(task.leaseExpiresAtMs).toBe(5000);

  const renew = task.renewLease();
  channel.last().resolve(create(RenewLeaseResponseSchema, { leaseExpiresAtMs: 9000n }));
  await renew;
  expect(task.leaseExpiresAtMs).toBe(9000);
  const failed = task.renewLease();
  channel.last().reject(operationError(ErrorCode.UNAVAILABLE, "UNAVAILABLE"));
  await expect(failed).rejects.toMatchObject({ code: "UNAVAILABLE" });
  expect(task.consecutiveRenewalFailures()).toBe(1);
  expect(task.state).toBe("running");
});

test("shutdown aborts the signal but keeps the task usable", async () => {
  const { task, channel } = makeTask();
  task[TASK_CONTROL].shutdown("closing");
  expect(task.signal.reason).toEqual({ kind: "shutdown", message: "closing" });
  expect(task.state).toBe("running");
  const delay = task.delayExecution(42.9);
  expect(channel.last().request).toMatchObject({ delayUntilMs: 42n });
  channel.last().resolve(create(DelayTaskResponseSchema));
  await expect(delay).resolves.toBeUndefined();
  await flush();
  expect(task.state).toBe("consumed");
  const progress = makeTask();
  const p = progress.task.updateProgress(1);
  progress.channel.last().resolve(create(UpdateProgressResponseSchema));
  await expect(p).resolves.toBeUndefined();
});

test("CLOSED while settling consumes the task (outcome unknown)", async () => {
  const { task, channel } = makeTask();
  const done = task.complete();
  channel.last().reject(FlowFabricError.local(ErrorCode.CANCELLED, "CLOSED", "closed"));
  await expect(done).rejects.toMatchObject({ reason: "CLOSED" });
  expect(task.state).toBe("consumed");
});

/** Resolves once the channel has received `n` operations in all. */
async function sentCount(channel: FakeChannel, n: number): Promise<void> {
  while (channel.sent.length < n) await new Promise((r) => setTimeout(r, 1));
}

test.each([ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.ABORTED])("an unanswered complete (%s) is sent again until answered; the task stays settling", async (code) => {
  const { task, channel } = makeTask();
  const done = task.complete("result");
  for (let i = 1; i <= 3; i++) {
    await sentCount(channel, i);
    expect(task.state).toBe("settling");
    channel.last().reject(operationError(code, code));
  }
  await sentCount(channel, 4);
  expect(channel.sent.map((s) => s.kind)).toEqual(["complete", "complete", "complete", "complete"]);
  expect(channel.sent.every((s) => s.request === channel.sent[0]!.request)).toBe(true);
  channel.last().resolve(create(CompleteTaskResponseSchema, { reconciled: true }));
  await expect(done).resolves.toEqual({ reconciled: true });
  expect(task.state).toBe("consumed");
  expect(channel.ended).toEqual([task]);
});

test("retries of an unanswered settle stop once the lease is known lost", async () => {
  const { task, channel } = makeTask();
  const done = task.fail("boom");
  task[TASK_CONTROL].lose("lease_lost", "LEASE_EXPIRED");
  channel.last().reject(operationError(ErrorCode.UNAVAILABLE, "UNAVAILABLE"));
  await expect(done).rejects.toMatchObject({ code: "UNAVAILABLE" });
  expect(channel.sent).toHaveLength(1);
  expect(task.state).toBe("lost");
});

test("appends refused as UNAVAILABLE are sent again in order, and a settle waits for them", async () => {
  const { task, channel } = makeTask();
  const a1 = task.appendFrame("t", "one");
  const a2 = task.appendFrame("t", "two");
  const first = channel.sent[0]!;
  const second = channel.sent[1]!;
  second.reject(operationError(ErrorCode.UNAVAILABLE, "UNAVAILABLE")); // the later one fails first
  first.reject(operationError(ErrorCode.UNAVAILABLE, "UNAVAILABLE"));
  await flush();
  const a3 = task.appendFrame("t", "three"); // made while retries are pending: queued behind them
  const complete = task.complete();
  const seqOf = (i: number): bigint => (channel.sent[i]!.request as { sequence: bigint }).sequence;
  await sentCount(channel, 3);
  expect(seqOf(2)).toBe(1n);
  channel.last().reject(operationError(ErrorCode.UNAVAILABLE, "UNAVAILABLE")); // still down
  await sentCount(channel, 4);
  expect(seqOf(3)).toBe(1n);
  channel.last().resolve({ entryId: "1-0", frameCount: 1n, summaryVersion: 0n });
  await sentCount(channel, 5);
  expect(seqOf(4)).toBe(2n);
  channel.last().resolve({ entryId: "2-0", frameCount: 2n, summaryVersion: 0n });
  await sentCount(channel, 6);
  expect(seqOf(5)).toBe(3n);
  expect(channel.sent.filter((s) => s.kind === "complete")).toHaveLength(0);
  channel.last().resolve({ entryId: "3-0", frameCount: 3n, summaryVersion: 0n });
  await expect(Promise.all([a1, a2, a3])).resolves.toEqual([
    { entryId: "1-0", frameCount: 1, summaryVersion: 0 }, { entryId: "2-0", frameCount: 2, summaryVersion: 0 }, { entryId: "3-0", frameCount: 3, summaryVersion: 0 },
  ]);
  await sentCount(channel, 7);
  expect(channel.last().kind).toBe("complete");
  channel.last().resolve(create(CompleteTaskResponseSchema));
  await complete;
});

test("an append refused for good is not retried", async () => {
  const { task, channel } = makeTask();
  const a = task.appendFrame("t", "x");
  channel.last().reject(operationError(ErrorCode.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED"));
  await expect(a).rejects.toMatchObject({ reason: "LIMIT_EXCEEDED" });
  expect(channel.sent).toHaveLength(1);
});
