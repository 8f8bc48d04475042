import { create } from "@bufbuild/protobuf";
import {
  AdoptionResultSchema, CancelRequestedSchema, HeartbeatAckSchema, LeaseLostSchema, TaskPushSchema,
  type SessionRequest, type TaskPush,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { OperationRouter } from "../../sdk-ts/src/operation-router.js";
import { TaskRegistry } from "../../sdk-ts/src/task-registry.js";
import type { WorkerEvent } from "../../sdk-ts/src/worker-events.js";
import type { WorkerSession } from "../../sdk-ts/src/worker-session.js";

class FakeSession {
  state: "opening" | "open" | "ended" = "open";
  readonly written: SessionRequest["body"][] = [];
  send(body: SessionRequest["body"]): boolean {
    this.written.push(body);
    return true;
  }
  get s(): WorkerSession {
    return this as unknown as WorkerSession;
  }
}

const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));
const push = (...ids: string[]): TaskPush =>
  create(TaskPushSchema, { tasks: ids.map((id) => ({ fence: { executionId: id, leaseId: `lease-${id}`, leaseEpoch: 1n, attemptId: "a" } })) });

function setup(): { registry: TaskRegistry; events: WorkerEvent[]; session: FakeSession } {
  const events: WorkerEvent[] = [];
  return { registry: new TaskRegistry(new OperationRouter(), (e) => events.push(e)), events, session: new FakeSession() };
}

test("pushed tasks are queued in order and acknowledged together, once per tick", async () => {
  const { registry, session } = setup();
  registry.receive(session.s, push("1:a", "1:b"));
  registry.receive(session.s, push("2:c"));
  expect(session.written).toEqual([]);
  await nextTick();
  expect(session.written).toEqual([{ case: "ack", value: expect.objectContaining({ leaseIds: ["lease-1:a", "lease-1:b", "lease-2:c"] }) }]);
  expect(registry.size).toBe(3);
  expect((await registry.next())?.executionId).toBe("1:a");
  expect((await registry.next())?.executionId).toBe("1:b");
  registry.receive(session.s, push("3:d"));
  await nextTick();
  expect(session.written).toHaveLength(2);
});

test("tasks whose session ended before the ack are lost (the gateway requeued them)", async () => {
  const { registry, session, events } = setup();
  registry.receive(session.s, push("1:a"));
  registry.forgetSession(session.s);
  await nextTick();
  expect(session.written).toEqual([]);
  expect(registry.size).toBe(0);
  expect(events).toEqual([{ type: "task_lost", executionId: "1:a", kind: "lease_lost", message: "the session ended before the task was acknowledged" }]);
  registry.stopIntake();
  expect(await registry.next()).toBeUndefined(); // the lost task is skipped
});

test("heartbeat acks are paired by lease id: a status about an older lease of the execution is ignored", async () => {
  const { registry, session } = setup();
  registry.receive(session.s, push("1:a"));
  const a = await registry.next();
  registry.heartbeatAck(create(HeartbeatAckSchema, { leases: [{ executionId: "1:a", leaseId: "lease-1:a", renewed: true, leaseExpiresAtMs: 777n }] }));
  expect(a?.leaseExpiresAtMs).toBe(777);
  // The round ran while an older lease of 1:a was still held elsewhere in the gateway's view.
  registry.heartbeatAck(create(HeartbeatAckSchema, { leases: [{ executionId: "1:a", leaseId: "older-lease", renewed: false, reason: "STALE_LEASE" }] }));
  registry.heartbeatAck(create(HeartbeatAckSchema, { leases: [{ executionId: "1:a", leaseId: "older-lease", renewed: true, leaseExpiresAtMs: 1n }] }));
  expect(a?.state).toBe("running");
  expect(a?.leaseExpiresAtMs).toBe(777);
  registry.heartbeatAck(create(HeartbeatAckSchema, { leases: [{ executionId: "1:a", leaseId: "lease-1:a", renewed: false, reason: "LEASE_EXPIRED" }] }));
  expect(a?.state).toBe("lost");
  expect(a?.signal.reason).toEqual({ kind: "lease_lost", message: "LEASE_EXPIRED" });
});

test("a heartbeat's loss applies to the lease it names even when the task arrived after the heartbeat was sent", async () => {
  const { registry, session } = setup();
  // The gateway pushed 1:b, then ran the round of a heartbeat the worker had sent just before the
  // push arrived: the round covered 1:b's lease, and its loss is about that very lease.
  registry.receive(session.s, push("1:b"));
  const b = await registry.next();
  registry.heartbeatAck(create(HeartbeatAckSchema, { leases: [{ executionId: "1:b", leaseId: "lease-1:b", renewed: false, reason: "STALE_LEASE" }] }));
  expect(b?.state).toBe("lost");
});

test("lease_lost and cancel_requested match the lease id; cancel_requested aborts with kind cancelled", async () => {
  const { registry, session } = setup();
  registry.receive(session.s, push("1:a", "1:b"));
  const a = await registry.next();
  const b = await registry.next();
  registry.leaseLost(create(LeaseLostSchema, { executionId: "1:a", leaseId: "older-lease", reason: "LEASE_EXPIRED" }));
  expect(a?.state).toBe("running");
  registry.leaseLost(create(LeaseLostSchema, { executionId: "1:a", leaseId: "lease-1:a", reason: "LEASE_EXPIRED" }));
  expect(a?.state).toBe("lost");
  registry.cancelRequested(create(CancelRequestedSchema, { executionId: "1:b", leaseId: "older-lease", reason: "stale", cancelledBy: "operator" }));
  expect(b?.state).toBe("running"); // about an older lease of the same execution
  registry.cancelRequested(create(CancelRequestedSchema, { executionId: "1:b", leaseId: "lease-1:b", reason: "user asked", cancelledBy: "operator" }));
  expect(b?.signal.reason).toEqual({ kind: "cancelled", message: "user asked (by operator)" });
  await expect(registry.whenIdle()).resolves.toBeUndefined();
});

test("adoption results apply in Hello order", async () => {
  const { registry, session } = setup();
  registry.receive(session.s, push("1:a", "1:b"));
  const offered = registry.held();
  const adopted = registry.adopt(offered, [
    create(AdoptionResultSchema, { executionId: "1:a", adopted: true, leaseExpiresAtMs: 999n }),
    create(AdoptionResultSchema, { executionId: "1:b", adopted: false, error: { reason: "STALE_LEASE" } }),
  ]);
  expect(adopted).toBe(1);
  expect(offered.map((t) => t.state)).toEqual(["running", "lost"]);
  expect(offered[0]?.leaseExpiresAtMs).toBe(999);
  expect(offered[1]?.signal.reason).toEqual({ kind: "lease_lost", message: "not re-adopted: STALE_LEASE" });
});

test("shutdown aborts held tasks with kind shutdown", async () => {
  const { registry, session } = setup();
  registry.receive(session.s, push("1:a"));
  const a = await registry.next();
  registry.shutdown("closing");
  expect(a?.signal.reason).toEqual({ kind: "shutdown", message: "closing" });
  expect(a?.state).toBe("running");
});
