import { FlowFabricClient, FlowFabricError, FlowFabricWorker, type ClaimedTask, type SuspendOptions, type WaitpointHandle } from "../../sdk-ts/src/index.js";
import { awaitAll, eventually, startHarness, type Harness } from "../support/gateway.js";

/**
 * Suspend -> signal -> resume through the SDK worker and client (docs/signals.md): conditions,
 * pending waitpoints, timeouts, cancel, a resume on another gateway, and 10,000 executions.
 */
let h: Harness;
let client: FlowFabricClient;
const workers: FlowFabricWorker[] = [];
let seq = 0;

beforeAll(async () => {
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  client.close();
  await h.stop();
});

type Handler = (task: ClaimedTask) => Promise<Uint8Array | string | void>;

async function startWorker(lane: string, handler: Handler, address = h.gateway.grpcAddress, maxConcurrentTasks = 10): Promise<FlowFabricWorker> {
  const worker = await FlowFabricWorker.connect({ address, workerId: `sw${++seq}`, lanes: [lane], maxConcurrentTasks });
  workers.push(worker);
  void worker.run(handler);
  return worker;
}

/** Resolves with the waitpoint of each execution as its first attempt suspends. */
class Waitpoints {
  private readonly known = new Map<string, WaitpointHandle>();
  private readonly waiters = new Map<string, (w: WaitpointHandle) => void>();
  add(executionId: string, w: WaitpointHandle): void {
    this.known.set(executionId, w);
    this.waiters.get(executionId)?.(w);
  }
  of(executionId: string): Promise<WaitpointHandle> {
    const w = this.known.get(executionId);
    return w !== undefined ? Promise.resolve(w) : new Promise((resolve) => this.waiters.set(executionId, resolve));
  }
}

interface Run { readonly attemptIndex: number; readonly resumed: boolean; readonly resumeReason: string; readonly signals: string[] }

/** A lane whose handler suspends (first run) then completes with the resume's signal names. */
async function suspendingLane(options: SuspendOptions, address?: string): Promise<{ lane: string; waitpoints: Waitpoints; runs: Map<string, Run[]> }> {
  const lane = `susp-${++seq}`;
  const waitpoints = new Waitpoints();
  const runs = new Map<string, Run[]>();
  await startWorker(lane, async (task) => {
    const signals = task.resumed ? (await task.resumeSignals()).map((s) => `${s.name}=${Buffer.from(s.payload).toString()}`) : [];
    runs.set(task.executionId, [...(runs.get(task.executionId) ?? []), { attemptIndex: task.attemptIndex, resumed: task.resumed, resumeReason: task.resumeReason, signals }]);
    if (!task.resumed) {
      const s = await task.suspend(options);
      if (s.status === "suspended") {
        waitpoints.add(task.executionId, s.waitpoint);
        return;
      }
    }
    return signals.join(",");
  }, address);
  return { lane, waitpoints, runs };
}

async function signal(executionId: string, w: WaitpointHandle, name: string, payload = name, idempotencyKey = ""): Promise<string> {
  return (await client.deliverSignal({ executionId, waitpointId: w.waitpointId, token: w.token, name, payload, source: "test", idempotencyKey })).effect;
}

const completed = (id: string) => eventually(() => client.getResult(id), (r) => r.state === "completed");

test("any: the slot is released while suspended; one signal resumes the same attempt with resumeReason signal", async () => {
  const { lane, waitpoints, runs } = await suspendingLane({ reasonCode: "approval", waitFor: { signals: ["approved", "rejected"] } });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  const w = await waitpoints.of(executionId);
  const d = await eventually(() => client.describeExecution(executionId), (x) => x.state === "suspended");
  expect(d).toMatchObject({ blockingReason: "waiting_for_signal", ownershipState: "unowned", suspension: { reasonCode: "approval" } });
  expect(d.waitpoints.map((x) => x.state)).toEqual(["active"]);
  await eventually(async () => h.gateway.sessions.leaseCount, (n) => n === 0);
  expect(await signal(executionId, w, "rejected", "no thanks")).toBe("triggered_resume");
  const r = await completed(executionId);
  expect(Buffer.from(r.result!).toString()).toBe("rejected=no thanks");
  expect(runs.get(executionId)).toEqual([
    { attemptIndex: 0, resumed: false, resumeReason: "", signals: [] },
    { attemptIndex: 0, resumed: true, resumeReason: "signal", signals: ["rejected=no thanks"] },
  ]);
  expect((await client.describeExecution(executionId)).attemptCount).toBe(1);
});

test("all and count modes; a duplicate (idempotency key) counts once", async () => {
  const all = await suspendingLane({ waitFor: { signals: ["a", "b"], mode: "all" } });
  const count = await suspendingLane({ waitFor: { mode: { count: 2 } } });
  const [x, y] = await Promise.all([
    client.createExecution({ lane: all.lane, kind: "k", input: "" }),
    client.createExecution({ lane: count.lane, kind: "k", input: "" }),
  ]);
  const wa = await all.waitpoints.of(x.executionId);
  expect(await signal(x.executionId, wa, "a")).toBe("accepted");
  expect(await signal(x.executionId, wa, "a")).toBe("accepted");
  expect(await signal(x.executionId, wa, "b")).toBe("triggered_resume");
  expect(Buffer.from((await completed(x.executionId)).result!).toString()).toBe("a=a,a=a,b=b");
  const wc = await count.waitpoints.of(y.executionId);
  expect(await signal(y.executionId, wc, "one", "1", "k1")).toBe("accepted");
  expect(await signal(y.executionId, wc, "one", "1", "k1")).toBe("duplicate");
  expect(await signal(y.executionId, wc, "two", "2", "k2")).toBe("triggered_resume");
  expect(Buffer.from((await completed(y.executionId)).result!).toString()).toBe("one=1,two=2");
});

test("a signal before the suspend, through a pending waitpoint: already_satisfied, the handler continues with the lease", async () => {
  const lane = `pending-${++seq}`;
  const seen: string[] = [];
  await startWorker(lane, async (task) => {
    const w = await task.createPendingWaitpoint("callback", { expiresInMs: 60_000 });
    expect(await signal(task.executionId, w, "done", "early")).toBe("accepted");
    const s = await task.suspend({ waitFor: { signals: ["done"] } });
    seen.push(s.status, task.state, String(task.isLeaseHealthy()));
    const signals = await task.resumeSignals();
    return signals.map((x) => `${x.name}:${Buffer.from(x.payload).toString()}:${x.source}`).join(",");
  });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  expect(Buffer.from((await completed(executionId)).result!).toString()).toBe("done:early:test");
  expect(seen).toEqual(["already_satisfied", "running", "true"]);
});

test.each([
  ["fail", "failed"],
  ["cancel", "cancelled"],
  ["expire", "expired"],
] as const)("suspension timeout with onTimeout %s ends %s", async (onTimeout, state) => {
  const { lane } = await suspendingLane({ waitFor: { signals: ["never"] }, timeoutMs: 150, onTimeout });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  const d = await eventually(() => client.describeExecution(executionId), (x) => x.state === state);
  expect(d.waitpoints[0]).toMatchObject({ state: "closed", closeReason: "timeout" });
});

test("suspension timeout with onTimeout resume: resumed without signals, resumeReason timeout", async () => {
  const { lane, runs } = await suspendingLane({ waitFor: { signals: ["never"] }, timeoutMs: 150, onTimeout: "resume" });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  await completed(executionId);
  expect(runs.get(executionId)![1]).toEqual({ attemptIndex: 0, resumed: true, resumeReason: "timeout", signals: [] });
});

test("cancel while suspended closes the waitpoint: a later signal gets WAITPOINT_CLOSED", async () => {
  const { lane, waitpoints } = await suspendingLane({ waitFor: { signals: ["go"] } });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  const w = await waitpoints.of(executionId);
  await eventually(() => client.describeExecution(executionId), (x) => x.state === "suspended");
  expect(await client.cancelExecution(executionId, "changed my mind")).toMatchObject({ cancelled: true });
  const err = await signal(executionId, w, "go").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FlowFabricError);
  expect((err as FlowFabricError).reason).toBe("WAITPOINT_CLOSED");
});

test("operator resume and a resume on another gateway than the one that suspended", async () => {
  const second = await h.startGateway();
  const { lane, waitpoints } = await suspendingLane({ waitFor: { signals: ["go"] } });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  await waitpoints.of(executionId);
  await eventually(() => client.describeExecution(executionId), (x) => x.state === "suspended");
  // The first gateway's worker goes away; only a worker on the second gateway serves the lane now.
  await workers.pop()!.close({ graceMs: 0 });
  const resumedOn: string[] = [];
  await startWorker(lane, async (task) => {
    resumedOn.push(`${task.resumed}:${task.resumeReason}:${task.attemptIndex}`);
    return "elsewhere";
  }, second.grpcAddress);
  const other = await FlowFabricClient.connect({ address: second.grpcAddress });
  await other.resumeExecution(executionId);
  other.close();
  expect(Buffer.from((await completed(executionId)).result!).toString()).toBe("elsewhere");
  expect(resumedOn).toEqual(["true:operator:0"]);
});

test("10,000 suspended executions resumed by signals: none lost, none resumed twice", async () => {
  const N = 10_000;
  const lane = `many-${++seq}`;
  const resumes = new Map<string, number>();
  const effects = new Map<string, number>();
  await startWorker(lane, async (task) => {
    if (!task.resumed) {
      const s = await task.suspend({ waitFor: { signals: ["go"] } });
      // The outside party is this process: it signals as soon as it holds the token.
      if (s.status === "suspended") {
        const effect = await signal(task.executionId, s.waitpoint, "go");
        effects.set(effect, (effects.get(effect) ?? 0) + 1);
      }
      return;
    }
    resumes.set(task.executionId, (resumes.get(task.executionId) ?? 0) + 1);
    return "ok";
  }, h.gateway.grpcAddress, 500);
  const ids: string[] = [];
  for (let i = 0; i < N; i += 1000) {
    const batch = await client.createExecutions(Array.from({ length: 1000 }, () => ({ lane, kind: "k", input: "" })));
    ids.push(...batch.map((c) => c.executionId));
  }
  await awaitAll((id) => client.getResult(id), ids, ["completed"], 500_000);
  expect(effects).toEqual(new Map([["triggered_resume", N]]));
  expect(resumes.size).toBe(N);
  expect([...resumes.values()].every((n) => n === 1)).toBe(true);
}, 600_000);
