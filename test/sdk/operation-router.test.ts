import { create } from "@bufbuild/protobuf";
import { OperationRouter } from "../../sdk-ts/src/operation-router.js";
import {
  CompleteTaskRequestSchema, CompleteTaskResponseSchema, OperationErrorSchema, SessionResponseSchema, UpdateProgressRequestSchema,
  type SessionRequest, type SessionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FlowFabricError } from "../../sdk-ts/src/errors.js";
import type { OperationOwner, TaskState } from "../../sdk-ts/src/task-operations.js";
import type { WorkerSession } from "../../sdk-ts/src/worker-session.js";

/** Records what would be written on a session stream. */
class FakeSession {
  state: "opening" | "open" | "ended" = "open";
  readonly written: { requestId: string; body: SessionRequest["body"] }[] = [];
  send(body: SessionRequest["body"], requestId = ""): boolean {
    if (this.state === "ended") return false;
    this.written.push({ requestId, body });
    return true;
  }
  asSession(): WorkerSession {
    return this as unknown as WorkerSession;
  }
}

const owner = (state: TaskState = "running"): OperationOwner => ({ executionId: "1:a", state });
const answer = (requestId: string, body: SessionResponse["body"]): SessionResponse => create(SessionResponseSchema, { requestId, body });

test("operations wait for a target, then are sent with unique request ids and matched by them", async () => {
  const router = new OperationRouter();
  const a = router.submit(owner(), "complete", create(CompleteTaskRequestSchema));
  const b = router.submit(owner(), "updateProgress", create(UpdateProgressRequestSchema, { percent: 3 }));
  const session = new FakeSession();
  router.setTarget(session.asSession());
  expect(session.written.map((w) => w.body.case)).toEqual(["complete", "updateProgress"]);
  const [ca, cb] = session.written;
  expect(ca!.requestId).not.toBe(cb!.requestId);
  expect(ca!.requestId.length).toBeGreaterThan(0);
  expect(ca!.requestId.length).toBeLessThanOrEqual(64);

  expect(router.answer(answer(cb!.requestId, { case: "error", value: create(OperationErrorSchema, { code: 3, detail: { reason: "INVALID_ARGUMENT", field: "percent", message: "bad" } }) }))).toBe(true);
  await expect(b).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "percent" });
  expect(router.answer(answer(ca!.requestId, { case: "complete", value: create(CompleteTaskResponseSchema, { reconciled: false }) }))).toBe(true);
  await expect(a).resolves.toMatchObject({ reconciled: false });
  expect(router.size).toBe(0);
  expect(router.answer(answer(ca!.requestId, { case: "complete", value: create(CompleteTaskResponseSchema) }))).toBe(true); // late duplicate
  expect(router.answer(answer("", { case: "ping", value: { $typeName: "flowfabric.v1.Ping", nonce: 1n } }))).toBe(false);
});

test("an answer of the wrong kind is a protocol violation", async () => {
  const router = new OperationRouter();
  const session = new FakeSession();
  router.setTarget(session.asSession());
  const p = router.submit(owner(), "complete", create(CompleteTaskRequestSchema));
  router.answer(answer(session.written[0]!.requestId, { case: "updateProgress", value: { $typeName: "flowfabric.v1.UpdateProgressResponse" } }));
  await expect(p).rejects.toMatchObject({ code: "INTERNAL", reason: "PROTOCOL_VIOLATION" });
});

test("unanswered operations of an ended session are re-sent with the same request id on the next one", async () => {
  const router = new OperationRouter();
  const first = new FakeSession();
  router.setTarget(first.asSession());
  const state = { value: "running" as TaskState };
  const task: OperationOwner = { executionId: "1:a", get state() { return state.value; } };
  const complete = router.submit(task, "complete", create(CompleteTaskRequestSchema));
  const progress = router.submit(task, "updateProgress", create(UpdateProgressRequestSchema));
  const [c, p] = first.written;
  first.state = "ended";
  router.sessionEnded(first.asSession());
  const second = new FakeSession();
  router.setTarget(second.asSession());
  expect(second.written.map((w) => [w.body.case, w.requestId])).toEqual([["complete", c!.requestId], ["updateProgress", p!.requestId]]);

  // The next session loses the task's lease: the terminal op is still re-sent, the progress report is dropped.
  second.state = "ended";
  router.sessionEnded(second.asSession());
  state.value = "settling";
  const third = new FakeSession();
  router.setTarget(third.asSession());
  expect(third.written.map((w) => w.body.case)).toEqual(["complete", "updateProgress"]);
  third.state = "ended";
  router.sessionEnded(third.asSession());
  state.value = "lost";
  const fourth = new FakeSession();
  router.setTarget(fourth.asSession());
  expect(fourth.written.map((w) => w.body.case)).toEqual(["complete"]);
  await expect(progress).rejects.toMatchObject({ reason: "LEASE_LOST" });
  router.answer(answer(c!.requestId, { case: "complete", value: create(CompleteTaskResponseSchema, { reconciled: true }) }));
  await expect(complete).resolves.toMatchObject({ reconciled: true });
});

test("operations in flight on a draining session stay there; new ones go to the new target", () => {
  const router = new OperationRouter();
  const old = new FakeSession();
  router.setTarget(old.asSession());
  void router.submit(owner(), "complete", create(CompleteTaskRequestSchema));
  const next = new FakeSession();
  router.setTarget(next.asSession());
  void router.submit(owner(), "updateProgress", create(UpdateProgressRequestSchema));
  expect(old.written.map((w) => w.body.case)).toEqual(["complete"]);
  expect(next.written.map((w) => w.body.case)).toEqual(["updateProgress"]);
  old.state = "ended";
  router.sessionEnded(old.asSession());
  expect(next.written.map((w) => w.body.case)).toEqual(["updateProgress", "complete"]);
});

test("close rejects pending and future operations", async () => {
  const router = new OperationRouter();
  const pending = router.submit(owner(), "complete", create(CompleteTaskRequestSchema));
  const error = new FlowFabricError({ code: "CANCELLED", reason: "CLOSED", message: "closed" });
  router.close(error);
  await expect(pending).rejects.toBe(error);
  await expect(router.submit(owner(), "complete", create(CompleteTaskRequestSchema))).rejects.toBe(error);
});
