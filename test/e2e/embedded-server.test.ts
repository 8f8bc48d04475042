import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "iovalkey";
import { FlowFabricClient } from "../../sdk-ts/src/index.js";
import { lineMatching, logLines, startMain as startMainProcess, type MainProcess } from "../support/main-process.js";

/** `npm start`'s entry point with no VALKEY_URL: the embedded server's life is tied to the gateway's. */
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function startMain(env: Record<string, string>): MainProcess {
  const main = startMainProcess(env);
  children.push(main.child);
  return main;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, "utf8"));

test("serves with its own server (AOF on), prints where it listens, and leaves no orphan after kill -9", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "ff-embedded-"));
  dirs.push(dataDir);
  const main = startMain({ FLOWFABRIC_DATA_DIR: dataDir });
  const { child, lines, output } = main;
  const grpc = await lineMatching(lines, /gRPC \(workers, gRPC clients\):\s+(\S+)/);
  expect(output()).toMatch(/HTTP \(Connect JSON, gRPC-Web, health\):\s+http:\/\/127\.0\.0\.1:\d+/);
  const started = logLines(main, "embedded server started")[0]!;
  const pid = Number(started["pid"]);
  expect(pid).toBeGreaterThan(0);
  expect(alive(pid)).toBe(true);

  const client = await FlowFabricClient.connect({ address: grpc[1]! });
  const { executionId } = await client.createExecution({ lane: "embedded", kind: "k", input: "persisted" });
  expect((await client.describeExecution(executionId)).state).toBe("waiting");
  client.close();
  // The logged URL hides the generated password; the password is in the data folder (0600).
  const url = String(started["url"]);
  expect(url).toMatch(/^redis:\/\/:\[REDACTED\]@127\.0\.0\.1:\d+$/);
  const password = readFileSync(join(dataDir, "embedded-password"), "utf8").trim();
  expect(output()).not.toContain(password);
  const port = Number(/:(\d+)$/.exec(url)![1]);
  const stranger = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  stranger.on("error", () => undefined);
  await expect(stranger.call("INFO", "server")).rejects.toThrow(/NOAUTH|Authentication required/);
  stranger.disconnect();
  const admin = new Redis({ port, host: "127.0.0.1", password });
  expect(await admin.config("GET", "appendonly")).toEqual(["appendonly", "yes"]);
  expect(await admin.config("GET", "appendfsync")).toEqual(["appendfsync", "everysec"]);
  expect(await admin.config("GET", "dir")).toEqual(["dir", join(dataDir, "valkey")]);
  await admin.quit();

  child.kill("SIGKILL");
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  expect(alive(pid)).toBe(false);
}, 30_000);

test("with no server binary it exits 1 printing the exact install command", async () => {
  const { child, output } = startMain({ PATH: "/nonexistent", VALKEY_SERVER_BIN: "" });
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  expect(code).toBe(1);
  expect(output()).toContain("sudo apt-get install -y redis-server");
}, 30_000);
