/**
 * The partition count is fixed at first boot: the first gateway writes `ff:config` `partitions`
 * (HSETNX); every later one reads it and refuses to start when its configuration differs.
 */
import type { Cluster, Redis } from "iovalkey";
import { EngineError, EngineErrorCode } from "./errors.js";
import { CONFIG_KEY } from "./keys.js";

export const PARTITIONS_FIELD = "partitions";

/** Returns the stored partition count (writing `configured` on first boot); PARTITION_MISMATCH when they differ. */
export async function ensurePartitionConfig(client: Redis | Cluster, configured: number): Promise<number> {
  if (!Number.isInteger(configured) || configured < 1 || configured > 16384) {
    throw new EngineError(EngineErrorCode.INVALID_ARGUMENT, `partitions must be an integer in 1..16384, got ${configured}`, { field: "partitions" });
  }
  const written = await client.hsetnx(CONFIG_KEY, PARTITIONS_FIELD, String(configured));
  if (written === 1) return configured;
  const stored = Number(await client.hget(CONFIG_KEY, PARTITIONS_FIELD));
  if (stored !== configured) {
    throw new EngineError(
      EngineErrorCode.PARTITION_MISMATCH,
      `this store was created with ${stored} partitions but the gateway is configured with ${configured}; ` +
        `set partitions to ${stored} (the count cannot change after first boot)`,
      { stored: String(stored), configured: String(configured) },
    );
  }
  return stored;
}
