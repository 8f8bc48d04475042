/**
 * The proof that `@flowfabric/sdk` is installable: `npm pack` the SDK, install the tarball into a
 * fresh project made by `npm init -y` and `tsc --init` (their defaults: a "commonjs" package,
 * module nodenext, verbatimModuleSyntax, no @types/node), compile a producer (ES module, .mts)
 * and a worker (CommonJS, .cts) there with tsc, and run both with plain `node` against the
 * compiled gateway (`flowfabric-gateway`) on a real server. Nothing here runs TypeScript sources.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { grpcAddressOf, startMain, type MainProcess } from "../support/main-process.js";
import { startTestServer, type TestServer } from "../support/redis.js";

const ROOT = resolve(__dirname, "../..");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const LANE = "pack-install";
const execFileAsync = promisify(execFile);

/** This environment without what `npm test` exports (npm_config_*, npm_package_*…): nested npm commands see only their own project. */
function npmFreeEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")));
}

/** Runs a command to completion; rejects with its output when it exits non-zero. */
async function sh(command: string, args: readonly string[], cwd: string): Promise<string> {
  const { stdout } = await execFileAsync(command, args, { cwd, env: npmFreeEnv(), maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Runs `node file` in the app; resolves with its exit code and output. */
function runNode(app: string, file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [file], { cwd: app, env: npmFreeEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.once("error", reject);
    child.once("close", (code) => resolveRun({ code, stdout, stderr }));
  });
}

const producerSource = (address: string): string => `import { FlowFabricClient } from "@flowfabric/sdk";

const client = await FlowFabricClient.connect({ address: ${JSON.stringify(address)} });
const { executionId } = await client.createExecution({
  lane: ${JSON.stringify(LANE)},
  kind: "greet",
  input: new TextEncoder().encode(JSON.stringify({ name: "Ada" })),
});
// Follow the attempt's output frames until the attempt ends, then read the outcome.
const tail = client.tailStream(executionId, 0);
const frames: string[] = [];
for await (const frame of tail) frames.push(new TextDecoder().decode(frame.payload));
const outcome = await client.getResult(executionId);
client.close();
console.log(JSON.stringify({
  executionId, frames, end: tail.end?.reason, state: outcome.state, result: new TextDecoder().decode(outcome.result),
}));
`;

const workerSource = (address: string): string => `import sdk = require("@flowfabric/sdk");

async function main(): Promise<void> {
  const worker = await sdk.FlowFabricWorker.connect({
    address: ${JSON.stringify(address)}, workerId: "pack-install-worker", lanes: [${JSON.stringify(LANE)}], maxConcurrentTasks: 1,
  });
  let ran = (): void => undefined;
  const firstTask = new Promise<void>((resolve) => { ran = resolve; });
  void worker.run(async (task) => {
    const { name } = JSON.parse(task.inputText()) as { name: string };
    await task.appendFrame("greeting", "hello, " + name);
    ran();
    return "hello, " + name; // completes the execution with this result
  });
  await firstTask;
  await worker.close(); // lets the running task settle first
  console.log("worker done: " + (worker.state === "closed"));
}

main().catch((err: unknown) => {
  console.error(err);
  throw err;
});
`;

/** Loads both entry points with require() and import() from plain JavaScript, and tries a deep import. */
const loaderSource = `const sdk = require("@flowfabric/sdk");
const wire = require("@flowfabric/sdk/wire");
let deep = "allowed";
try { require("@flowfabric/sdk/dist/cjs/client.js"); } catch (err) { deep = err.code; }
import("@flowfabric/sdk").then(async (esm) => {
  const esmWire = await import("@flowfabric/sdk/wire");
  console.log(JSON.stringify({
    require: [typeof sdk.FlowFabricClient, typeof sdk.FlowFabricWorker, typeof sdk.FlowFabricError, typeof wire.WorkerService, typeof wire.SessionRequestSchema],
    import: [typeof esm.FlowFabricClient, typeof esm.FlowFabricWorker, typeof esm.FlowFabricError, typeof esmWire.WorkerService, typeof esmWire.SessionRequestSchema],
    deep,
  }));
});
`;

let tmp: string;
let app: string;
let packed: { filename: string; files: { path: string }[] };
let server: TestServer | undefined;
let gateway: MainProcess | undefined;
let address: string;

beforeAll(async () => {
  if (!existsSync(join(ROOT, "node_modules/@flowfabric/sdk/package.json"))) {
    throw new Error("node_modules/@flowfabric/sdk is missing: run `npm install` (or `npm ci`) at the repository root, which links the workspaces");
  }
  tmp = mkdtempSync(join(tmpdir(), "ff-pack-"));
  app = join(tmp, "app");
  mkdirSync(app);
  // Both packages compiled (the gateway runs from gateway/dist); `npm pack` builds the SDK again
  // (prepack), incrementally, and packs what its "files" and exports name.
  await sh("npm", ["run", "build", "--silent"], ROOT);
  [packed] = JSON.parse(await sh("npm", ["pack", "--json", "--pack-destination", tmp], join(ROOT, "sdk-ts"))) as [typeof packed];
  await sh("npm", ["init", "-y"], app);
  await sh(process.execPath, [TSC, "--init"], app);
  await sh("npm", ["install", join(tmp, packed.filename), "--prefer-offline", "--no-audit", "--no-fund"], app);

  server = await startTestServer();
  gateway = startMain({ VALKEY_URL: server.url, FLOWFABRIC_HOST: "127.0.0.1" }, { compiled: true });
  address = await grpcAddressOf(gateway);
  writeFileSync(join(app, "producer.mts"), producerSource(address));
  writeFileSync(join(app, "worker.cts"), workerSource(address));
  writeFileSync(join(app, "loader.cjs"), loaderSource);
  await sh(process.execPath, [TSC, "-p", "."], app);
}, 240_000);

afterAll(async () => {
  if (gateway && gateway.child.exitCode === null) {
    const exited = new Promise((r) => gateway!.child.once("exit", r));
    gateway.child.kill("SIGTERM"); // drains, then exits
    await exited;
  }
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 30_000);

test("the tarball holds compiled ESM and CommonJS with declarations, and no build leftovers", () => {
  const files = packed.files.map((f) => f.path);
  for (const format of ["cjs", "esm"]) {
    for (const entry of ["index", "wire"]) {
      expect(files).toContain(`dist/${format}/${entry}.js`);
      expect(files).toContain(`dist/${format}/${entry}.d.ts`);
    }
    expect(files).toContain(`dist/${format}/package.json`);
  }
  expect(files).toContain("README.md");
  expect(files.filter((f) => /tsbuildinfo|tsconfig|scripts\//.test(f))).toEqual([]);
});

test("installing it brings the SDK's own dependencies and its OpenTelemetry peer, none of the gateway's", () => {
  const installed = (name: string): boolean => existsSync(join(app, "node_modules", name, "package.json"));
  expect(["@grpc/grpc-js", "@bufbuild/protobuf", "@opentelemetry/api"].filter((name) => !installed(name))).toEqual([]);
  expect(["iovalkey", "@connectrpc/connect", "@opentelemetry/sdk-trace-base", "@flowfabric/gateway"].filter(installed)).toEqual([]);
  const manifest = JSON.parse(readFileSync(join(app, "node_modules/@flowfabric/sdk/package.json"), "utf8")) as { version: string };
  expect(manifest.version).toBe("0.1.0");
});

test("a producer (ES module) and a worker (CommonJS) compiled by the app's tsc run with plain node: the execution completes", async () => {
  expect(existsSync(join(app, "producer.mjs"))).toBe(true);
  expect(existsSync(join(app, "worker.cjs"))).toBe(true);
  const [worker, producer] = await Promise.all([runNode(app, "worker.cjs"), runNode(app, "producer.mjs")]);
  expect({ code: producer.code, stderr: producer.stderr }).toEqual({ code: 0, stderr: "" });
  const outcome = JSON.parse(producer.stdout) as Record<string, unknown>;
  expect(outcome).toEqual({
    executionId: expect.stringMatching(/^\d+:/), frames: ["hello, Ada"], end: "completed", state: "completed", result: "hello, Ada",
  });
  expect({ code: worker.code, stdout: worker.stdout.trim() }).toEqual({ code: 0, stdout: "worker done: true" });
}, 60_000);

test("require() and import() load both entry points from plain JavaScript; deep imports are refused", async () => {
  const loaded = await runNode(app, "loader.cjs");
  expect(loaded.code).toBe(0);
  expect(JSON.parse(loaded.stdout)).toEqual({
    require: ["function", "function", "function", "object", "object"],
    import: ["function", "function", "function", "object", "object"],
    deep: "ERR_PACKAGE_PATH_NOT_EXPORTED",
  });
});
