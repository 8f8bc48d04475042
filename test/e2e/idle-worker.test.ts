import type { SessionRequest } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FlowFabricClient, FlowFabricWorker, type WorkerEvent } from "../../sdk-ts/src/index.js";
import { WorkerSession } from "../../sdk-ts/src/worker-session.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";

/**
 * An idle SDK worker costs its gateway little: while it holds no task it sends no heartbeats,
 * only a keepalive ping per keepalive interval — and its session stays up. Heartbeats resume as
 * soon as it holds a task, and renew its lease.
 */
let h: Harness;
beforeAll(async () => {
  // Silence limit max(3 x 100 ms, 2 x 300 ms) = 600 ms: a worker sending nothing is dropped quickly.
  h = await startHarness({ heartbeatIntervalMs: 100, keepaliveIntervalMs: 300, leaseTtlMs: 1000 });
});
afterAll(async () => {
  await h.stop();
});

test("no heartbeats while no task is held; pings keep the session up; heartbeats renew a held task's lease", async () => {
  const send = jest.spyOn(WorkerSession.prototype, "send"); // calls through: records what the worker sends
  const sent = (kind: NonNullable<SessionRequest["body"]["case"]>): number => send.mock.calls.filter(([body]) => body.case === kind).length;
  const events: WorkerEvent["type"][] = [];
  const worker = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: "idle", lanes: ["idle"], onEvent: (e) => events.push(e.type) });
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
  try {
    // Three keepalive pings (~900 ms, 9 heartbeat periods, past the 600 ms silence limit).
    await eventually(async () => sent("ping"), (n) => n >= 3, 5000);
    expect(sent("heartbeat")).toBe(0);
    expect(events.filter((e) => e === "session_ended")).toEqual([]);
    expect(h.gateway.sessions.size).toBe(1);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let renewals!: () => void;
    const renewed = new Promise<void>((r) => (renewals = r));
    void worker.run(async (task) => {
      const first = task.leaseExpiresAtMs;
      const check = setInterval(() => { if (task.leaseExpiresAtMs > first) { clearInterval(check); renewals(); } }, 20);
      await gate;
      return "ok";
    });
    const { executionId } = await client.createExecution({ lane: "idle" });
    await renewed; // a heartbeat renewed the held task's lease
    expect(sent("heartbeat")).toBeGreaterThan(0);
    release();
    await eventually(() => client.getResult(executionId), (r) => r.state === "completed");
  } finally {
    send.mockRestore();
    client.close();
    await worker.close({ graceMs: 0 });
  }
});
