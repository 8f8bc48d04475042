import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "iovalkey";
import { findServerBinary } from "../../gateway/src/embedded/server-binary.js";
import { freePort } from "../../gateway/src/embedded/server-process.js";

/** A throwaway Redis/Valkey Cluster on loopback: 3 masters, optionally one replica each; no persistence. */
export interface TestCluster {
  /** Ports of the masters, then of the replicas (replica i follows master i). */
  readonly ports: readonly number[];
  /** `redis+cluster://` URL naming two of the masters as seeds (the gateway's `valkeyUrl`). */
  readonly url: string;
  /** Kills one node (SIGKILL) and resolves once its process is gone. */
  kill(port: number): Promise<void>;
  /** Resolves once a replica owns the slots `port` served and the cluster is ok again (as seen by `via`). */
  promoted(port: number, via: number): Promise<number>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Replicas per master: 0 (default) or 1. */
  readonly replicas?: 0 | 1;
  /** `cluster-node-timeout`, in ms: how long a master may be unreachable before a failover. Default 5000. */
  readonly nodeTimeoutMs?: number;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const admin = (port: number): Redis => new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 1 });

/**
 * Starts three cluster-enabled masters (and, with `replicas: 1`, a replica of each), assigns the
 * 16384 slots in three ranges, and waits for cluster_state:ok (and every replica in sync).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const binary = findServerBinary();
  if (!binary) throw new Error("no valkey-server or redis-server binary");
  const replicas = options.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), "ff-cluster-"));
  const children = new Map<number, ChildProcess>();
  const ports: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...children.values()].map((c) => new Promise<void>((res) => {
      if (c.exitCode !== null || c.signalCode !== null) return res();
      c.once("exit", () => res());
      c.kill("SIGTERM");
    })));
    rmSync(dir, { recursive: true, force: true });
  };
  const total = 3 * (1 + replicas);
  try {
    for (let i = 0; i < total; i++) {
      const port = await freePort();
      ports.push(port);
      children.set(port, spawn(binary, [
        "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`,
        "--cluster-node-timeout", String(options.nodeTimeoutMs ?? 5000), "--loglevel", "warning",
      ], { stdio: "ignore" }));
    }
    const admins = ports.map(admin);
    try {
      await Promise.all(admins.map((a) => waitFor(async () => { await a.connect().catch(() => undefined); return (await a.ping()) === "PONG"; }, "node start")));
      const ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
      await Promise.all(admins.slice(0, 3).map((a, i) => a.call("CLUSTER", "ADDSLOTSRANGE", String(ranges[i]![0]), String(ranges[i]![1]))));
      for (const port of ports.slice(1)) await admins[0]!.call("CLUSTER", "MEET", "127.0.0.1", String(port));
      await Promise.all(admins.map((a) => waitFor(async () => String(await a.call("CLUSTER", "INFO")).includes(`cluster_known_nodes:${total}`), "nodes meet")));
      if (replicas === 1) {
        for (let i = 0; i < 3; i++) {
          const masterId = String(await admins[i]!.call("CLUSTER", "MYID"));
          await waitFor(async () => (await admins[3 + i]!.call("CLUSTER", "REPLICATE", masterId)) === "OK", "replicate");
        }
        await Promise.all(admins.slice(3).map((a) => waitFor(async () => /master_link_status:up/.test(await a.info("replication")), "replica sync")));
      }
      await Promise.all(admins.map((a) => waitFor(async () => String(await a.call("CLUSTER", "INFO")).includes("cluster_state:ok"), "cluster ok")));
    } finally {
      await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    url: `redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`,
    async kill(port) {
      const child = children.get(port);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGKILL");
      await exited;
    },
    async promoted(port, via) {
      const a = admin(via);
      try {
        let owner = port;
        await waitFor(async () => {
          const slots = (await a.call("CLUSTER", "SLOTS")) as [number, number, [string, number, string]][];
          const range = slots.find(([from]) => from === [0, 5461, 10923][ports.indexOf(port) % 3]);
          owner = range?.[2][1] ?? port;
          return owner !== port && String(await a.call("CLUSTER", "INFO")).includes("cluster_state:ok");
        }, "promotion", 30_000);
        return owner;
      } finally {
        a.disconnect();
      }
    },
    stop,
  };
}
