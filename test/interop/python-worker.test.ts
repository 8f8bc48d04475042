/**
 * Interop: the raw Python protocol-reference worker (examples/python-worker/raw_worker.py: grpcio + protoc
 * --python_out message classes, no grpc plugin) against a real gateway on a real redis-server.
 *
 * How things are found and launched:
 * - redis-server: test/support/redis.ts `startTestServer()` (free loopback port, no persistence);
 * - gateway: `startGateway()` from gateway/src/index.ts, in this process, on ports 0;
 * - worker: a child process `/usr/bin/python3 -u examples/python-worker/raw_worker.py --handler demo`
 *   (override the interpreter with FLOWFABRIC_PYTHON), under `setpriv --pdeathsig TERM` when
 *   available so it dies with jest. It prints one JSON event per line on stdout; the test awaits
 *   those events (welcome, task_started, cancel_noticed, task_failed, task_completed, stopped);
 * - producer: a raw @grpc/grpc-js + @grpc/proto-loader client loaded from proto/*.proto, and plain
 *   `node:http` POSTs for the README's curl snippet (Connect JSON on the HTTP listener).
 *
 * Loader options: keepCase false, longs Number, enums String, bytes Buffer, defaults, oneofs.
 */
import { awaitAll } from "../support/gateway.js";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { findOnPath } from "../../gateway/src/embedded/server-binary.js";
import { startGateway } from "../../gateway/src/index.js";
import { startTestServer, type TestServer } from "../support/redis.js";

const ROOT = join(__dirname, "..", "..");
const PYTHON = process.env["FLOWFABRIC_PYTHON"] || "/usr/bin/python3";
const WORKER = join(ROOT, "examples", "python-worker", "raw_worker.py");
const LANE = "py-interop";
const CONCURRENCY = 8;
const TERMINAL = new Set(["PUBLIC_STATE_COMPLETED", "PUBLIC_STATE_FAILED", "PUBLIC_STATE_CANCELLED", "PUBLIC_STATE_EXPIRED", "PUBLIC_STATE_SKIPPED"]);

const packageDefinition = protoLoader.loadSync(["flowfabric/v1/execution.proto"], {
  includeDirs: [join(ROOT, "proto")],
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  flowfabric: { v1: { ExecutionService: grpc.ServiceClientConstructor } };
};

interface ExecutionInfo {
  executionId: string; state: string; attemptCount: number; retryCount: number; attemptIndex: number;
  cancelledBy: string; cancelReason: string; failureCategory: string; progressPercent: number; hasResult: boolean;
}
interface WorkerEvent { event: string; execution_id?: string; attempt_index?: number; [k: string]: unknown }

function unary<Res>(client: grpc.Client, method: string, request: object, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>)[method];
    if (!fn) return reject(new Error(`no method ${method}`));
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The worker child: its JSON events, awaitable, and its stderr tail for failure messages. */
class WorkerProcess {
  readonly events: WorkerEvent[] = [];
  private readonly waiters: { pred: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }[] = [];
  private stderrTail: string[] = [];
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;

  constructor(readonly child: ChildProcess) {
    this.exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    child.on("error", (err) => this.stderrTail.push(`spawn error: ${String(err)}`));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let ev: WorkerEvent;
      try {
        ev = JSON.parse(line) as WorkerEvent;
      } catch {
        return;
      }
      this.events.push(ev);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.pred(ev)) {
          this.waiters.splice(i, 1);
          w.resolve(ev);
        }
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail = this.stderrTail.slice(-40);
    });
  }

  waitFor(pred: (e: WorkerEvent) => boolean, what: string, timeoutMs = 20_000): Promise<WorkerEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for worker event ${what}; worker stderr:\n${this.stderrTail.join("\n")}`)),
        timeoutMs,
      );
      timer.unref();
      this.waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  of(executionId: string): WorkerEvent[] {
    return this.events.filter((e) => e.execution_id === executionId);
  }

  /** SIGTERM (drain: finish running tasks, close), SIGKILL if it has not exited in `graceMs`. */
  async stop(graceMs = 15_000): Promise<[number | null, NodeJS.Signals | null]> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return [this.child.exitCode, this.child.signalCode];
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function spawnWorker(grpcAddress: string): WorkerProcess {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new Error(
      `${PYTHON} cannot import grpc/protobuf (${probe.error?.message ?? probe.stderr.trim()}); ` +
        "install them with: sudo apt-get install -y python3-grpcio python3-protobuf protobuf-compiler",
    );
  }
  const args = [
    "-u", WORKER, "--address", grpcAddress, "--lanes", LANE, "--worker-id", "py-interop",
    "--concurrency", String(CONCURRENCY), "--handler", "demo", "--grace-ms", "5000", "--log-level", "WARNING",
  ];
  const setpriv = findOnPath("setpriv");
  const child = setpriv
    ? spawn(setpriv, ["--pdeathsig", "TERM", PYTHON, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(PYTHON, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  return new WorkerProcess(child);
}

let server: TestServer;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let client: grpc.Client;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  server = await startTestServer();
  gateway = await startGateway({ valkeyUrl: server.url, grpcPort: 0, httpPort: 0, partitions: 4 });
  client = new proto.flowfabric.v1.ExecutionService(gateway.grpcAddress, grpc.credentials.createInsecure());
  worker = spawnWorker(gateway.grpcAddress);
  await worker.waitFor((e) => e.event === "welcome", "welcome");
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  client?.close();
  await gateway?.close();
  await server?.stop();
}, 60_000);

test("the Python worker runs 200 executions: completes, retries a transient failure, notices a cancel", async () => {
  const w = worker!;
  // 198 ordinary executions: JSON specs for the demo handler (some sleep a little and report
  // progress), and some opaque binary inputs that the demo handler echoes byte-exact.
  const specs = Array.from({ length: 198 }, (_, i) =>
    i % 3 === 2 ? Buffer.from([0xff, 0x00, i & 0xff, 0x80]) : Buffer.from(JSON.stringify(i % 3 === 1 ? { n: i, sleep_ms: 30 } : { n: i })),
  );
  const created = await unary<{ results: { executionId: string }[] }>(client, "CreateExecutions", {
    executions: specs.map((input, i) => ({ lane: LANE, kind: "demo", input, tags: { index: String(i) } })),
  });
  expect(created.results).toHaveLength(198);
  const plainIds = created.results.map((r) => r.executionId);

  const retried = await unary<{ executionId: string }>(client, "CreateExecution", {
    lane: LANE,
    kind: "demo",
    input: Buffer.from(JSON.stringify({ fail: true })),
    retryPolicy: { maxRetries: 3, backoff: "BACKOFF_KIND_FIXED", initialDelayMs: 200, retryableCategories: ["transient"] },
  });
  const sleeper = await unary<{ executionId: string }>(client, "CreateExecution", {
    lane: LANE,
    kind: "demo",
    input: Buffer.from(JSON.stringify({ sleep_ms: 120_000 })),
  });

  // Cancel the sleeper while it runs, and see the worker notice it.
  await w.waitFor((e) => e.event === "task_started" && e.execution_id === sleeper.executionId, "task_started(sleeper)", 30_000);
  const cancel = await unary<{ state: string; cancelled: boolean }>(client, "CancelExecution", {
    executionId: sleeper.executionId,
    reason: "python interop cancels the sleeper",
  });
  expect(cancel).toEqual({ state: "PUBLIC_STATE_CANCELLED", cancelled: true });
  const noticed = await w.waitFor((e) => e.event === "cancel_noticed" && e.execution_id === sleeper.executionId, "cancel_noticed(sleeper)");
  expect(String(noticed["reason"])).toContain("python interop cancels the sleeper");

  const allIds = [...plainIds, retried.executionId, sleeper.executionId];
  const final = await waitTerminal(allIds, 90_000);

  for (const [i, id] of plainIds.entries()) {
    expect(final.get(id)!.state).toBe("PUBLIC_STATE_COMPLETED");
    const r = await unary<{ state: string; result: Buffer }>(client, "GetResult", { executionId: id });
    const input = specs[i]!;
    const expected = i % 3 === 2 ? input : Buffer.from(JSON.stringify({ attempt_index: 0, input: JSON.parse(input.toString()) as unknown }));
    expect(r.result.toString("hex")).toBe(expected.toString("hex"));
  }

  // The retry: attempt 0 failed with "transient" (retry scheduled), attempt 1 completed.
  const retriedInfo = final.get(retried.executionId)!;
  expect(retriedInfo.state).toBe("PUBLIC_STATE_COMPLETED");
  expect(retriedInfo.attemptCount).toBe(2);
  expect(retriedInfo.retryCount).toBe(1);
  const retriedEvents = w.of(retried.executionId).map((e) => `${e.event}#${e.attempt_index ?? ""}`);
  expect(retriedEvents).toEqual(["task_started#0", "task_failed#0", "task_started#1", "task_completed#1"]);
  expect(w.of(retried.executionId).find((e) => e.event === "task_failed")!["outcome"]).toBe("FAIL_OUTCOME_RETRY_SCHEDULED");
  const retriedResult = await unary<{ result: Buffer }>(client, "GetResult", { executionId: retried.executionId });
  expect(JSON.parse(retriedResult.result.toString())).toEqual({ attempt_index: 1, input: { fail: true } });

  // The cancel.
  const sleeperInfo = final.get(sleeper.executionId)!;
  expect(sleeperInfo.state).toBe("PUBLIC_STATE_CANCELLED");
  expect(sleeperInfo.cancelReason).toBe("python interop cancels the sleeper");
  expect(w.of(sleeper.executionId).some((e) => e.event === "task_completed")).toBe(false);

  // Nothing was lost, and every operation was answered.
  expect(w.events.filter((e) => e.event === "lease_lost" || e.event === "operation_error")).toEqual([]);
  expect(w.events.filter((e) => e.event === "task_completed")).toHaveLength(199);
}, 150_000);

test("the README's curl producer snippet (Connect JSON, base64 bytes) reaches the Python worker", async () => {
  // What curl does: one HTTP/1.1 POST with a JSON body, no connection kept alive afterwards.
  const post = async (method: string, body: object): Promise<Record<string, unknown>> => {
    const { status, text } = await httpPost(`${gateway.httpAddress}/flowfabric.v1.ExecutionService/${method}`, JSON.stringify(body));
    expect({ method, status, text }).toMatchObject({ status: 200 });
    return JSON.parse(text) as Record<string, unknown>;
  };
  const created = await post("CreateExecution", { lane: LANE, kind: "echo", input: "aGVsbG8=" });
  const executionId = String(created["executionId"]);
  expect(executionId).toMatch(/^\d+:/);
  const deadline = Date.now() + 20_000;
  let result: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    result = await post("GetResult", { executionId });
    if (result["state"] === "PUBLIC_STATE_COMPLETED") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // "hello" is not JSON, so the demo handler echoes it byte-exact.
  expect(result).toMatchObject({ state: "PUBLIC_STATE_COMPLETED", result: "aGVsbG8=" });
}, 30_000);

test("SIGTERM drains the Python worker: it stops taking work and exits 0", async () => {
  const [code, signal] = await worker!.stop();
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  const stopped = worker!.events.find((e) => e.event === "stopped");
  expect(stopped).toMatchObject({ fatal: "" });
});

/** A plain HTTP/1.1 POST (no keep-alive agent, so nothing outlives the gateway). */
function httpPost(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", agent: false, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`POST ${url} timed out`)));
    req.end(body);
  });
}

async function describeExecution(executionId: string): Promise<ExecutionInfo> {
  return (await unary<{ execution: ExecutionInfo }>(client, "DescribeExecution", { executionId })).execution;
}

/** Waits until every id is terminal, within `timeoutMs`. */
function waitTerminal(ids: string[], timeoutMs: number): Promise<Map<string, ExecutionInfo>> {
  return awaitAll(describeExecution, ids, [...TERMINAL], timeoutMs);
}
