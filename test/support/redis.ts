import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess, type ServerProcess } from "../../gateway/src/embedded/server-process.js";

/** A throwaway redis-server/valkey-server on a free loopback port, no persistence. */
export interface TestServer extends ServerProcess {
  readonly dataDir: string;
}

/** Starts a fresh server for one test file. Call `stop()` in afterAll. */
export async function startTestServer(opts: { persistence?: boolean } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "ff-test-"));
  const server = await startServerProcess({ port: 0, dataDir, persistence: opts.persistence ?? false });
  return {
    ...server,
    dataDir,
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
