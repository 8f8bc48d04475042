import { Redis } from "iovalkey";
import { EngineErrorCode } from "../../gateway/src/engine/errors.js";
import { LIBRARY_VERSION, librarySource, loadLibrary, loadedVersion } from "../../gateway/src/engine/lua-library.js";
import { ensurePartitionConfig } from "../../gateway/src/engine/partition-config.js";
import { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import { startTestServer, type TestServer } from "../support/redis.js";
import { expectCode } from "../support/engine.js";

let server: TestServer;
let redis: Redis;
beforeAll(async () => {
  server = await startTestServer();
  redis = new Redis(server.url);
});
afterAll(async () => {
  await redis.quit();
  await server.stop();
});

describe("library loader", () => {
  test("loads on an empty server, ff_version answers, reload is idempotent", async () => {
    await redis.call("FUNCTION", "FLUSH");
    expect(await loadedVersion(redis)).toBe(0);
    expect(await loadLibrary(redis)).toBe(LIBRARY_VERSION);
    expect(Number(await redis.call("FCALL_RO", "ff_version", 0))).toBe(LIBRARY_VERSION);
    expect(await loadLibrary(redis)).toBe(LIBRARY_VERSION);
    const list = (await redis.call("FUNCTION", "LIST", "LIBRARYNAME", "flowfabric")) as unknown[];
    expect(JSON.stringify(list)).toContain("ff_claim");
  });

  test("assembled source: header, version, every function registered once", () => {
    const src = librarySource();
    expect(src.startsWith("#!lua name=flowfabric\n")).toBe(true);
    expect(src).toContain(`local FF_LIBRARY_VERSION = ${LIBRARY_VERSION}`);
    const names = [...src.matchAll(/register_function[\s({]+(?:function_name = )?'(ff_\w+)'/g)].map((m) => m[1]);
    expect(new Set(names).size).toBe(names.length);
    expect(names.sort()).toEqual([
      "ff_append_frame", "ff_cancel", "ff_claim", "ff_complete", "ff_create", "ff_create_waitpoint", "ff_delay", "ff_deliver_signal",
      "ff_describe", "ff_expire_leases", "ff_expire_suspensions", "ff_expire_timeouts", "ff_fail", "ff_get_result", "ff_keyring",
      "ff_lane_heads", "ff_progress", "ff_promote_delayed", "ff_purge_terminal", "ff_read_frames", "ff_release", "ff_renew",
      "ff_resume", "ff_resume_signals", "ff_suspend", "ff_version",
    ]);
  });

  test("refuses to replace a newer library (LIBRARY_DOWNGRADE)", async () => {
    const newer = librarySource().replace(`local FF_LIBRARY_VERSION = ${LIBRARY_VERSION}`, `local FF_LIBRARY_VERSION = ${LIBRARY_VERSION + 1}`);
    await redis.call("FUNCTION", "LOAD", "REPLACE", newer);
    const detail = await expectCode(loadLibrary(redis), EngineErrorCode.LIBRARY_DOWNGRADE);
    expect(detail).toEqual({ loaded: String(LIBRARY_VERSION + 1), ours: String(LIBRARY_VERSION) });
    await expectCode(ValkeyBackend.connect({ url: server.url, partitions: 4 }), EngineErrorCode.LIBRARY_DOWNGRADE);
    await loadLibrary(redis, librarySource()).catch(() => undefined);
    await redis.call("FUNCTION", "LOAD", "REPLACE", librarySource());
    expect(await loadedVersion(redis)).toBe(LIBRARY_VERSION);
  });
});

describe("backend self-heal", () => {
  test("a server that lost the library gets it back on the next call", async () => {
    await redis.del("ff:config");
    const b = await ValkeyBackend.connect({ url: server.url, partitions: 4 });
    await redis.call("FUNCTION", "FLUSH");
    await expect(b.laneHeads(0)).resolves.toEqual(new Map());
    expect(await loadedVersion(redis)).toBe(LIBRARY_VERSION);
    await b.close();
    await redis.del("ff:config");
  });
});

describe("partition config", () => {
  test("first boot writes, later boots read, a different count is PARTITION_MISMATCH", async () => {
    await redis.del("ff:config");
    expect(await ensurePartitionConfig(redis, 8)).toBe(8);
    expect(await redis.hget("ff:config", "partitions")).toBe("8");
    expect(await ensurePartitionConfig(redis, 8)).toBe(8);
    const detail = await expectCode(ensurePartitionConfig(redis, 16), EngineErrorCode.PARTITION_MISMATCH);
    expect(detail).toEqual({ stored: "8", configured: "16" });
    await expectCode(ValkeyBackend.connect({ url: server.url, partitions: 4 }), EngineErrorCode.PARTITION_MISMATCH);
    await expectCode(ensurePartitionConfig(redis, 0), EngineErrorCode.INVALID_ARGUMENT);
  });

  test("an unreachable server is UNAVAILABLE", async () => {
    await expectCode(ValkeyBackend.connect({ url: "redis://127.0.0.1:1", partitions: 4, connectTimeoutMs: 300 }), EngineErrorCode.UNAVAILABLE);
  });
});
