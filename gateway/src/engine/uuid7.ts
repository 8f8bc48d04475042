import { randomFillSync } from "node:crypto";

/**
 * Time-ordered UUIDs (RFC 9562 version 7) for execution ids: 48 bits of Unix ms, then a 12-bit
 * counter (rand_a) that increases within a millisecond, then random bits. Within one process the
 * ids sort in creation order, so eligible-queue ties (same score) keep FIFO order.
 */
let lastMs = 0;
let counter = 0;
/** Random bytes are drawn 4 KiB at a time (one getrandom call per 512 ids, not per id). */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

export function uuid7(nowMs = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    counter = 0;
  } else if (++counter > 0xfff) {
    // Counter exhausted within this ms: borrow the next millisecond (keeps order, stays unique).
    lastMs++;
    counter = 0;
  }
  if (poolOffset + 8 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const random = pool.subarray(poolOffset, (poolOffset += 8));
  const ms = lastMs.toString(16).padStart(12, "0");
  const a = (0x7000 | counter).toString(16);
  const b = ((random[0]! & 0x3f) | 0x80).toString(16).padStart(2, "0") + random[1]!.toString(16).padStart(2, "0");
  const rest = random.subarray(2, 8).toString("hex");
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-${a}-${b}-${rest}`;
}
