/**
 * Every Valkey key and channel name FlowFabric uses is built here (and mirrored, for keys the
 * Lua library derives itself, in lua/includes/keys.lua). All keys of an execution share its
 * partition's hash tag `{p:N}`, so every FCALL is single-slot in Cluster mode.
 * The schema is documented in lua/README.md.
 */

/** Epoch of eligible scores: 2020-01-01T00:00:00Z. */
export const SCORE_EPOCH_MS = 1_577_836_800_000;
/** Width of one priority band in an eligible score (2^42 ms, about 139 years). */
export const SCORE_BAND = 4_398_046_511_104;
export const MAX_PRIORITY = 1000;
export const MIN_PRIORITY = -1000;

/** Eligible-zset score: priority band first (higher priority = lower score), then creation time. */
export function eligibleScore(priority: number, createdAtMs: number): number {
  return (MAX_PRIORITY - priority) * SCORE_BAND + (createdAtMs - SCORE_EPOCH_MS);
}

/** Priority encoded in an eligible score. */
export function priorityOfScore(score: number): number {
  return MAX_PRIORITY - Math.floor(score / SCORE_BAND);
}

/** Global (untagged) config hash: partition counts, library version. Read at boot only. */
export const CONFIG_KEY = "ff:config";

/**
 * The waitpoint token keyring (untagged hash, one slot): `current`, `secret:<kid>` (hex),
 * `expires:<kid>` (Unix ms). Read by the gateway only; written by ff_keyring.
 */
export const WAITPOINT_KEYRING_KEY = "ff:keyring:waitpoint";

/** Canonical only: the partition in decimal without leading zeros ("5:<uuid>", never "05:<uuid>"). */
const EXECUTION_ID = /^(0|[1-9]\d{0,4}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export interface ParsedExecutionId {
  readonly partition: number;
  readonly uuid: string;
}

/**
 * Parses "<partition>:<uuid>"; null when malformed, out of range or not canonical (one execution
 * has one id: "05:<uuid>" is refused rather than taken as another name of "5:<uuid>").
 */
export function parseExecutionId(id: string, partitions: number): ParsedExecutionId | null {
  const m = EXECUTION_ID.exec(id);
  if (!m) return null;
  const partition = Number(m[1]);
  if (partition >= partitions) return null;
  return { partition, uuid: m[2]! };
}

export function executionId(partition: number, uuid: string): string {
  return `${partition}:${uuid}`;
}

/**
 * A queue is one namespace's lane: `<namespace>/<lane>`. Namespaces cannot contain "/" or ":",
 * so the key is unambiguous. Queues isolate namespaces: a worker never sees another namespace's work.
 */
export function queueKey(namespace: string, lane: string): string {
  return `${namespace}/${lane}`;
}

/** Key builders for one partition. */
export class PartitionKeys {
  /** The hash-tagged prefix every key of this partition starts with: `ff:{p:N}:`. */
  readonly prefix: string;
  constructor(readonly partition: number) {
    this.prefix = `ff:{p:${partition}}:`;
  }
  /** Execution record (hash). */
  core(uuid: string): string { return `${this.prefix}e:${uuid}`; }
  /** Input payload (string, binary). */
  input(uuid: string): string { return `${this.prefix}e:${uuid}:in`; }
  /** Result payload (string, binary). */
  result(uuid: string): string { return `${this.prefix}e:${uuid}:out`; }
  /** Tags (hash). */
  tags(uuid: string): string { return `${this.prefix}e:${uuid}:tags`; }
  /** Output frames of one attempt (stream; entry id = cursor). Opened by the first append. */
  frames(uuid: string, attemptIndex: number): string { return `${this.prefix}e:${uuid}:a:${attemptIndex}:frames`; }
  /** State of one attempt's frame stream (hash: mode, counts, closed + reason, summary document). */
  framesMeta(uuid: string, attemptIndex: number): string { return `${this.prefix}e:${uuid}:a:${attemptIndex}:frames:meta`; }
  /** Eligible executions of one namespace's lane (zset, score = eligibleScore). */
  eligible(namespace: string, lane: string): string { return `${this.prefix}q:${queueKey(namespace, lane)}:eligible`; }
  /** Queues (`queueKey(namespace, lane)`) that ever had work in this partition (set). */
  lanes(): string { return `${this.prefix}lanes`; }
  /** Delayed executions of every lane (zset, score = due time in Unix ms). */
  delayed(): string { return `${this.prefix}delayed`; }
  /** Leased executions (zset, score = lease expiry in Unix ms). */
  leases(): string { return `${this.prefix}leases`; }
  /** Non-terminal executions with a deadline or an attempt timeout (zset, score = due time). */
  timeouts(): string { return `${this.prefix}timeouts`; }
  /** Waitpoint W of an execution (hash: id, key, state, aidx, created, expires, signals, closed_at, reason). */
  waitpoint(uuid: string, waitpointId: string): string { return `${this.prefix}e:${uuid}:wp:${waitpointId}`; }
  /** Waitpoint ids of an execution (zset, score = creation time). */
  waitpoints(uuid: string): string { return `${this.prefix}e:${uuid}:wps`; }
  /** Signals of an execution (stream; entry id = signal id). */
  signals(uuid: string): string { return `${this.prefix}e:${uuid}:sig`; }
  /** Signal idempotency of an execution (hash: "<waitpoint id>|<key>" -> signal id). */
  signalKeys(uuid: string): string { return `${this.prefix}e:${uuid}:sigk`; }
  /** Suspended executions with a timeout (zset, score = timeout, Unix ms). */
  suspended(): string { return `${this.prefix}suspended`; }
  /** Create idempotency (string -> execution id, 24 h TTL). */
  idempotency(namespace: string, key: string): string { return `${this.prefix}idem:${namespace}:${key}`; }
  /** Pub/sub channel of this partition's events (sharded pub/sub). */
  events(): string { return `${this.prefix}events`; }
}

/** Partition of an execution with an idempotency key: fnv1a32(namespace + "\0" + key) % partitions. */
export function idempotencyPartition(namespace: string, idempotencyKey: string, partitions: number): number {
  return fnv1a32(`${namespace}\0${idempotencyKey}`) % partitions;
}

/** FNV-1a, 32 bit, over the UTF-8 bytes of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Cluster slot of a key (CRC16/XMODEM of the hash tag, or of the whole key), 0..16383. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, "utf8");
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i]! << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
