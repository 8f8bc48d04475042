/**
 * What the gateway requires of its store, checked at start (eviction, persistence) and on every
 * readiness probe (reachable within a bound, library loaded). In Cluster mode every master is
 * checked: each holds its own keys and its own copy of the library.
 */
import type { Cluster, Redis } from "iovalkey";
import type { Logger } from "../logger.js";
import { isCluster, LIBRARY_VERSION, loadedVersion } from "./lua-library.js";

/** The nodes that hold data: the server itself, or every Cluster master. */
function dataNodes(client: Redis | Cluster): Redis[] {
  return isCluster(client) ? client.nodes("master") : [client];
}

function nodeName(node: Redis): string {
  return `${node.options.host ?? "?"}:${node.options.port ?? "?"}`;
}

/** CONFIG GET of one parameter; undefined when the server refuses CONFIG (managed services). */
async function configGet(node: Redis, name: string): Promise<string | undefined> {
  try {
    const reply = (await node.config("GET", name)) as unknown;
    return Array.isArray(reply) && typeof reply[1] === "string" ? reply[1] : undefined;
  } catch {
    return undefined;
  }
}

export interface StoreConfigOptions {
  /** Accept an eviction policy other than noeviction (FLOWFABRIC_ALLOW_EVICTION=1): a warning instead of a refusal. */
  readonly allowEviction: boolean;
}

/**
 * Refuses a store that may evict keys (an evicted record is a lost execution; BullMQ refuses the
 * same) unless allowed, and warns about a store with no persistence (a restart loses everything).
 * A server that does not answer CONFIG GET is let through with a warning.
 */
export async function checkStoreConfig(client: Redis | Cluster, opts: StoreConfigOptions, log: Logger): Promise<void> {
  for (const node of dataNodes(client)) {
    const where = nodeName(node);
    const policy = await configGet(node, "maxmemory-policy");
    if (policy === undefined) {
      log.warn("could not read the store's maxmemory-policy (CONFIG GET refused); make sure it is noeviction", { node: where });
    } else if (policy !== "noeviction") {
      const text = `the store at ${where} has maxmemory-policy "${policy}": FlowFabric requires "noeviction" (an evicted key is a lost execution). ` +
        "Set maxmemory-policy noeviction in the server's configuration (or CONFIG SET maxmemory-policy noeviction), " +
        "or set FLOWFABRIC_ALLOW_EVICTION=1 to accept the risk";
      if (!opts.allowEviction) throw new Error(text);
      log.warn(`${text} (allowed by FLOWFABRIC_ALLOW_EVICTION)`, { node: where, maxmemoryPolicy: policy });
    }
    const [aof, save] = [await configGet(node, "appendonly"), await configGet(node, "save")];
    if (aof === "no" && save === "") {
      log.warn("the store has no persistence (appendonly no, save \"\"): a store restart loses every execution; enable AOF (appendonly yes)", { node: where });
    }
  }
}

/** Why the store is not ready, or null when every data node answers with the library loaded within `timeoutMs`. */
export async function storeNotReady(client: Redis | Cluster, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`the store did not answer within ${timeoutMs} ms`), timeoutMs); });
  const probe = (async (): Promise<string | null> => {
    const nodes = dataNodes(client);
    if (nodes.length === 0) return "no store node reachable";
    const versions = await Promise.all(nodes.map((n) => loadedVersion(n)));
    const missing = versions.findIndex((v) => v < LIBRARY_VERSION);
    return missing < 0 ? null : `the flowfabric library (version ${LIBRARY_VERSION}) is not loaded on ${nodeName(nodes[missing]!)}`;
  })().catch((err: unknown) => `the store is unreachable: ${err instanceof Error ? err.message : String(err)}`);
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
