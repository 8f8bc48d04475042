import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Cluster, Redis } from "iovalkey";
import { EngineError, EngineErrorCode } from "./errors.js";

/**
 * Version of the `flowfabric` Lua library. Bump it with every change of lua/: a gateway refuses to
 * replace a newer loaded library with an older one. Injected into the library source as
 * `FF_LIBRARY_VERSION` and returned by `ff_version`.
 */
export const LIBRARY_VERSION = 8;

/** The lua/ folder (this file lives in gateway/src/engine/). */
export const LUA_DIR = resolve(__dirname, "../../../lua");

function luaFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".lua")).sort().map((f) => join(dir, f));
}

/** The library source: header, version, includes (sorted), functions (sorted). */
export function librarySource(luaDir: string = LUA_DIR): string {
  const parts = [
    "#!lua name=flowfabric",
    `local FF_LIBRARY_VERSION = ${LIBRARY_VERSION}`,
  ];
  for (const file of [...luaFiles(join(luaDir, "includes")), ...luaFiles(join(luaDir, "functions"))]) {
    parts.push(`-- ${file.slice(luaDir.length + 1)}`, readFileSync(file, "utf8"));
  }
  return parts.join("\n") + "\n";
}

function isMissingLibrary(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /function not found|no such library/i.test(msg);
}

/** The version loaded on one node; 0 when no flowfabric library is loaded there. */
export async function loadedVersion(node: Redis): Promise<number> {
  try {
    const v = await node.call("FCALL_RO", "ff_version", "0");
    return Number(v);
  } catch (err) {
    if (isMissingLibrary(err)) return 0;
    throw new EngineError(EngineErrorCode.UNAVAILABLE, `ff_version failed: ${String(err)}`, {}, { cause: err });
  }
}

async function loadOnNode(node: Redis, source: string): Promise<void> {
  const current = await loadedVersion(node);
  if (current > LIBRARY_VERSION) {
    throw new EngineError(
      EngineErrorCode.LIBRARY_DOWNGRADE,
      `the loaded flowfabric library is version ${current}, newer than this gateway's ${LIBRARY_VERSION}; upgrade the gateway`,
      { loaded: String(current), ours: String(LIBRARY_VERSION) },
    );
  }
  try {
    await node.call("FUNCTION", "LOAD", "REPLACE", source);
  } catch (err) {
    throw new EngineError(EngineErrorCode.UNAVAILABLE, `FUNCTION LOAD failed: ${String(err)}`, {}, { cause: err });
  }
}

/**
 * Loads the library (FUNCTION LOAD REPLACE) unless a newer version is loaded (LIBRARY_DOWNGRADE).
 * In Cluster mode, on every master (functions are per node). Returns LIBRARY_VERSION.
 */
export async function loadLibrary(client: Redis | Cluster, source: string = librarySource()): Promise<number> {
  if (isCluster(client)) {
    await client.ping(); // nodes("master") is empty until the cluster is ready
    const masters = client.nodes("master");
    if (masters.length === 0) throw new EngineError(EngineErrorCode.UNAVAILABLE, "no cluster master reachable");
    await Promise.all(masters.map((node) => loadOnNode(node, source)));
  } else {
    await loadOnNode(client, source);
  }
  return LIBRARY_VERSION;
}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}
