import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "iovalkey";
import { findServerBinary } from "../../gateway/src/embedded/server-binary.js";
import { freePort } from "../../gateway/src/embedded/server-process.js";

/** A throwaway 3-master Redis/Valkey Cluster on loopback (no persistence, no replicas). */
export interface TestCluster {
  readonly ports: readonly number[];
  /** `redis+cluster://` URL naming two of the masters as seeds (the gateway's `valkeyUrl`). */
  readonly url: string;
  stop(): Promise<void>;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts three cluster-enabled servers, assigns the 16384 slots in three ranges, and waits for cluster_state:ok. */
export async function startCluster(): Promise<TestCluster> {
  const binary = findServerBinary();
  if (!binary) throw new Error("no valkey-server or redis-server binary");
  const dir = mkdtempSync(join(tmpdir(), "ff-cluster-"));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => new Promise<void>((res) => {
      if (c.exitCode !== null) return res();
      c.once("exit", () => res());
      c.kill("SIGTERM");
    })));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      children.push(spawn(binary, [
        "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "5000",
        "--loglevel", "warning",
      ], { stdio: "ignore" }));
    }
    const admins = ports.map((port) => new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50 }));
    try {
      await Promise.all(admins.map((a) => waitFor(async () => { await a.connect().catch(() => undefined); return (await a.ping()) === "PONG"; }, "node start")));
      const ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
      await Promise.all(admins.map((a, i) => a.call("CLUSTER", "ADDSLOTSRANGE", String(ranges[i]![0]), String(ranges[i]![1]))));
      for (const port of ports.slice(1)) await admins[0]!.call("CLUSTER", "MEET", "127.0.0.1", String(port));
      await Promise.all(admins.map((a) => waitFor(async () => {
        const info = String(await a.call("CLUSTER", "INFO"));
        return info.includes("cluster_state:ok") && info.includes("cluster_known_nodes:3");
      }, "cluster ok")));
    } finally {
      await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: `redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`, stop };
}
