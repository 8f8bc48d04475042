import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "iovalkey";
import { CreateExecutionRequestSchema, ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { FenceSchema } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { AppendFrameRequestSchema, WorkerService } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FlowFabricClient, FlowFabricWorker } from "../../sdk-ts/src/index.js";
import { grpcAddressOf, lineMatching, logLines, startMain, type MainProcess } from "../support/main-process.js";
import { errorDetailOf, rawClient } from "../support/raw-session.js";
import { startTestServer, type TestServer } from "../support/redis.js";

/** `npm start`'s process as deployed: it survives hostile input, guards its data folder, hides secrets, shuts down in order. */
let server: TestServer;
const dirs: string[] = [];
const children: ChildProcess[] = [];
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await server.stop();
});

function main(env: Record<string, string>, opts: { detached?: boolean } = {}): MainProcess {
  const m = startMain(env, opts);
  children.push(m.child);
  return m;
}
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "ff-main-"));
  dirs.push(d);
  return d;
}
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, "utf8"));
const exitOf = (c: ChildProcess): Promise<number | null> => (c.exitCode !== null ? Promise.resolve(c.exitCode) : new Promise((r) => c.once("exit", (code) => r(code))));
const UUID = "00000000-0000-4000-8000-000000000000";

test("a spawned gateway stays up after requests that used to kill it (non-ASCII tag key, frame metadata key)", async () => {
  const m = main({ VALKEY_URL: server.url });
  const address = await grpcAddressOf(m);
  const http = (await lineMatching(m.lines, /HTTP \(Connect JSON, gRPC-Web, health\):\s+(\S+)/))[1]!;
  const exec = rawClient(ExecutionService, address);
  const worker = rawClient(WorkerService, address);
  const fence = create(FenceSchema, { executionId: `0:${UUID}`, leaseId: UUID, leaseEpoch: 1n, attemptId: UUID });
  for (let i = 0; i < 20; i++) {
    const tagErr = await exec.call("createExecution", create(CreateExecutionRequestSchema, { lane: "x", tags: { [`é${i}\n`]: "v" } })).catch((e: unknown) => e);
    expect(errorDetailOf(tagErr).code).toBe(grpc.status.INVALID_ARGUMENT);
    const mdErr = await worker.call("appendFrame", create(AppendFrameRequestSchema, { fence, frameType: "t", metadata: { [`${"ü".repeat(40)}${i}`]: "v" } })).catch((e: unknown) => e);
    expect(errorDetailOf(mdErr).code).toBe(grpc.status.INVALID_ARGUMENT);
    const res = await fetch(`${http}/flowfabric.v1.ExecutionService/CreateExecution`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ lane: "x", tags: { "é\u0000": "v" } }),
    });
    expect(res.status).toBe(400);
  }
  exec.close();
  worker.close();
  expect(m.child.exitCode).toBeNull();
  const client = await FlowFabricClient.connect({ address });
  const { executionId } = await client.createExecution({ lane: "still-up", kind: "k", input: "" });
  expect((await client.describeExecution(executionId)).state).toBe("waiting");
  client.close();
  expect(m.output()).not.toMatch(/uncaught exception|unhandled rejection/);
  m.child.kill("SIGTERM");
  expect(await exitOf(m.child)).toBe(0);
}, 60_000);

test("the data folder is 0700, its password 0600, and a second gateway on it is refused naming the owner; a stale lock is taken over", async () => {
  const dataDir = join(tempDir(), "data");
  const first = main({ FLOWFABRIC_DATA_DIR: dataDir });
  await grpcAddressOf(first);
  expect(statSync(dataDir).mode & 0o777).toBe(0o700);
  expect(statSync(join(dataDir, "embedded-password")).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(dataDir, "gateway.lock"), "utf8").trim()).toBe(String(first.child.pid));

  const second = main({ FLOWFABRIC_DATA_DIR: dataDir });
  expect(await exitOf(second.child)).toBe(1);
  expect(second.output()).toContain(`in use by another gateway (pid ${first.child.pid}`);
  expect(second.output()).toContain("FLOWFABRIC_DATA_DIR");

  first.child.kill("SIGKILL"); // no clean-up: the lock stays behind
  await exitOf(first.child);
  expect(existsSync(join(dataDir, "gateway.lock"))).toBe(true);
  const third = main({ FLOWFABRIC_DATA_DIR: dataDir });
  await grpcAddressOf(third);
  expect(readFileSync(join(dataDir, "gateway.lock"), "utf8").trim()).toBe(String(third.child.pid));
  third.child.kill("SIGTERM");
  expect(await exitOf(third.child)).toBe(0);
  expect(existsSync(join(dataDir, "gateway.lock"))).toBe(false);
}, 60_000);

test("the password of VALKEY_URL is never printed: not in the banner, the logs, nor a start-up error", async () => {
  const admin = new Redis(server.url);
  await admin.config("SET", "requirepass", "hunter2-secret");
  try {
    const m = main({ VALKEY_URL: `redis://:hunter2-secret@127.0.0.1:${server.port}`, FLOWFABRIC_LOG_LEVEL: "debug" });
    await grpcAddressOf(m);
    expect(m.output()).toContain("redis://:[REDACTED]@127.0.0.1");
    m.child.kill("SIGTERM");
    await exitOf(m.child);
    expect(m.output()).not.toContain("hunter2-secret");
    // Wrong password: the start-up error names the problem, not the password.
    const bad = main({ VALKEY_URL: `redis://:wrong-secret-pw@127.0.0.1:${server.port}` });
    expect(await exitOf(bad.child)).toBe(1);
    expect(bad.output()).toMatch(/flowfabric: /);
    expect(bad.output()).not.toContain("wrong-secret-pw");
  } finally {
    await admin.config("SET", "requirepass", "");
    await admin.quit();
  }
}, 60_000);

test("Ctrl-C (SIGINT to the whole process group) with a task held: the gateway drains first, then stops its server, in bounded time", async () => {
  const dataDir = join(tempDir(), "data");
  const m = main({ FLOWFABRIC_DATA_DIR: dataDir, FLOWFABRIC_DRAIN_GRACE_MS: "1000" }, { detached: true });
  const address = await grpcAddressOf(m);
  const serverPid = Number(logLines(m, "embedded server started")[0]!["pid"]);
  const client = await FlowFabricClient.connect({ address });
  const worker = await FlowFabricWorker.connect({ address, workerId: "held", lanes: ["held"], maxConcurrentTasks: 1, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
  let running!: () => void;
  const started = new Promise<void>((r) => { running = r; });
  void worker.run(async (task) => {
    running();
    await new Promise((r) => task.signal.addEventListener("abort", r));
  });
  await client.createExecution({ lane: "held", kind: "k", input: "" });
  await started;
  const t0 = Date.now();
  process.kill(-m.child.pid!, "SIGINT"); // what a terminal does: every process of the foreground group
  expect(await exitOf(m.child)).toBe(0);
  expect(Date.now() - t0).toBeLessThan(1000 + 5000);
  // The drain ran against a live store (the server was not in the signalled group), then the server stopped.
  const lines = m.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string });
  expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down: draining", "stopped"]));
  expect(m.output()).not.toMatch(/store connection lost/);
  expect(alive(serverPid)).toBe(false);
  await worker.close({ graceMs: 0 });
  client.close();
}, 60_000);

test("npm start forwards SIGTERM: the gateway and its embedded server stop", async () => {
  const dataDir = join(tempDir(), "data");
  const npm = spawn("npm", ["start", "--silent"], {
    cwd: resolve(__dirname, "../.."),
    env: { ...process.env, VALKEY_URL: "", FLOWFABRIC_DATA_DIR: dataDir, FLOWFABRIC_GRPC_PORT: "0", FLOWFABRIC_HTTP_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(npm);
  let out = "";
  npm.stderr!.on("data", (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolveServing) => npm.stdout!.on("data", (d: Buffer) => { out += d.toString(); if (/store:/.test(out)) resolveServing(); }));
  const serverPid = Number(/"pid":(\d+)[^\n]*"msg":"embedded server started"/.exec(out)?.[1]);
  const gatewayPid = Number(readFileSync(join(dataDir, "gateway.lock"), "utf8").trim());
  expect(alive(serverPid) && alive(gatewayPid)).toBe(true);
  npm.kill("SIGTERM");
  await exitOf(npm);
  const deadline = Date.now() + 10_000;
  while ((alive(gatewayPid) || alive(serverPid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect({ gateway: alive(gatewayPid), server: alive(serverPid) }).toEqual({ gateway: false, server: false });
  expect(out).toContain("shutting down: draining");
}, 60_000);

test("a stale lock file naming a pid that no longer exists does not block the start", async () => {
  const dataDir = join(tempDir(), "data");
  const m0 = main({ FLOWFABRIC_DATA_DIR: dataDir });
  await grpcAddressOf(m0);
  m0.child.kill("SIGTERM");
  await exitOf(m0.child);
  writeFileSync(join(dataDir, "gateway.lock"), "999999999\n");
  const m = main({ FLOWFABRIC_DATA_DIR: dataDir });
  await grpcAddressOf(m);
  m.child.kill("SIGTERM");
  expect(await exitOf(m.child)).toBe(0);
}, 60_000);
