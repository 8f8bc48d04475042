/**
 * The Valkey/Redis implementation of {@link EngineBackend}: every operation is one FCALL of the
 * `flowfabric` library (lua/) through a typed wrapper in ./fcall/.
 */
import { randomInt, randomUUID } from "node:crypto";
import type { EngineBackend } from "./backend.js";
import { ShardedSubscriber, closeConnection, createCommandClient, type CommandClient, type ConnectionOptions } from "./connections.js";
import { EngineError, EngineErrorCode } from "./errors.js";
import { buildCancelByHolder, buildCancelByOperator, decodeCancel, FN_CANCEL } from "./fcall/cancel.js";
import { buildClaim, decodeClaim, FN_CLAIM } from "./fcall/claim.js";
import { executionKeys, type FcallArgs } from "./fcall/common.js";
import { buildAppendFrames, decodeAppendFrames, FN_APPEND_FRAME, MAX_FRAMES_PER_CALL } from "./fcall/append-frame.js";
import { buildComplete, decodeComplete, FN_COMPLETE } from "./fcall/complete.js";
import { buildReadFrames, decodeReadFrames, FN_READ_FRAMES } from "./fcall/read-frames.js";
import { FrameWatcher } from "./frame-watcher.js";
import { buildCreate, decodeCreate, FN_CREATE } from "./fcall/create.js";
import { buildCreateWaitpoint, decodeCreateWaitpoint, FN_CREATE_WAITPOINT } from "./fcall/create-waitpoint.js";
import { buildDeliverSignal, decodeDeliverSignal, FN_DELIVER_SIGNAL } from "./fcall/deliver-signal.js";
import { buildKeyring, decodeKeyring, FN_KEYRING } from "./fcall/keyring.js";
import { buildResume, decodeResume, FN_RESUME } from "./fcall/resume.js";
import { buildResumeSignals, decodeResumeSignals, FN_RESUME_SIGNALS } from "./fcall/resume-signals.js";
import { buildSuspend, decodeSuspend, FN_SUSPEND } from "./fcall/suspend.js";
import { buildDelay, decodeDelay, FN_DELAY } from "./fcall/delay.js";
import { buildDescribe, decodeDescribe, FN_DESCRIBE } from "./fcall/describe.js";
import { buildFail, decodeFail, FN_FAIL } from "./fcall/fail.js";
import { buildGetResult, decodeGetResult, FN_GET_RESULT } from "./fcall/get-result.js";
import { buildLaneHeads, decodeLaneHeads, FN_LANE_HEADS } from "./fcall/lane-heads.js";
import { buildProgress, decodeProgress, FN_PROGRESS } from "./fcall/progress.js";
import { buildRelease, decodeRelease, FN_RELEASE } from "./fcall/release.js";
import { buildRenew, decodeRenew, FN_RENEW } from "./fcall/renew.js";
import {
  buildScan, decodeScan, FN_EXPIRE_LEASES, FN_EXPIRE_SUSPENSIONS, FN_EXPIRE_TIMEOUTS, FN_PROMOTE_DELAYED, FN_PURGE_TERMINAL, type ScannerFunction,
} from "./fcall/scanners.js";
import { PartitionKeys, WAITPOINT_KEYRING_KEY, idempotencyPartition, parseExecutionId } from "./keys.js";
import type {
  KeyringOutcome, PendingWaitpointSpec, SignalOutcome, SignalRecord, SignalSpec, SuspendOutcome, SuspendSpec,
} from "./signal-types.js";
import { loadLibrary } from "./lua-library.js";
import { uuid7 } from "./uuid7.js";
import { ensurePartitionConfig } from "./partition-config.js";
import type { QueuePosition,
  CancelResult, ClaimOutcome, ClaimRequest, ClaimantIdentity, CompleteOutcome, CreateOutcome, CreateSpec,
  EngineEvent, ExecutionRecord, FailResult, LeaseFence, RenewResult, ResultRecord, ScanResult,
} from "./types.js";
import type {
  AppendFrameOutcome, FrameLimits, FrameRead, FrameReadRequest, FrameSpec, FrameWatch, FrameWatchListener,
} from "./types.js";

export interface ValkeyBackendOptions extends ConnectionOptions {
  /**
   * Number of execution partitions. Written to `ff:config` on first boot; a later boot with a
   * different number fails with PARTITION_MISMATCH.
   */
  readonly partitions: number;
  /** How long `connect` may take (connect, load the library, check the layout), in ms. Default 30000. */
  readonly connectTimeoutMs?: number;
  /** Longest XREAD BLOCK of a partition's frame reader (watchFrames), in ms. Default 5000. */
  readonly frameBlockMs?: number;
  /**
   * Health of the command connection: `down` with the error that broke it (once per outage; the
   * client reconnects by itself and queues commands meanwhile), `up` once it is ready again.
   */
  readonly onConnectionHealth?: (state: "down" | "up", error?: Error) => void;
}

/** How an FCALL is sent: read-only (FCALL_RO) and/or with the reply's bulk strings as Buffers. */
interface CallMode {
  readonly ro?: boolean;
  readonly buffer?: boolean;
}

type FcallFn = (fn: string, numkeys: number, ...args: (string | Buffer)[]) => Promise<unknown>;
interface FcallMethods {
  fcall: FcallFn;
  fcall_ro: FcallFn;
  fcallBuffer: FcallFn;
  fcall_roBuffer: FcallFn;
}

const EVENT_CHANNEL = /^ff:\{p:(\d+)\}:events$/;

interface PendingAppend {
  readonly frame: FrameSpec;
  resolve(out: AppendFrameOutcome): void;
  reject(err: unknown): void;
}

export class ValkeyBackend implements EngineBackend {
  private subscriber: ShardedSubscriber | null = null;
  private watcher: FrameWatcher | null = null;
  private frameBlockMs = 5000;
  /** Appends per lease: queued while that lease's previous call is in flight (see appendFrame). */
  private readonly appendQueues = new Map<string, PendingAppend[]>();
  /** Per lease: settles waiting for its appends in flight to be answered (appends before a complete). */
  private readonly appendWaiters = new Map<string, Array<() => void>>();

  private constructor(
    private readonly client: CommandClient,
    readonly partitions: number,
    readonly libraryVersion: number,
  ) {}

  /** Connects, loads the Lua library (refusing a downgrade) and checks the partition layout. */
  static async connect(options: ValkeyBackendOptions): Promise<ValkeyBackend> {
    const client = createCommandClient(options);
    let lastError: Error | undefined;
    let down = false;
    // Without a listener the client prints every failed reconnect to the console.
    client.on("error", (err: Error) => {
      lastError = err;
      if (!down) {
        down = true;
        options.onConnectionHealth?.("down", err);
      }
    });
    client.on("ready", () => {
      if (!down) return;
      down = false;
      options.onConnectionHealth?.("up");
    });
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = options.connectTimeoutMs ?? 30_000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EngineError(EngineErrorCode.UNAVAILABLE,
        `cannot reach Valkey within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const boot = async (): Promise<ValkeyBackend> => {
        const libraryVersion = await loadLibrary(client);
        const partitions = await ensurePartitionConfig(client, options.partitions);
        const backend = new ValkeyBackend(client, partitions, libraryVersion);
        if (options.frameBlockMs !== undefined) backend.frameBlockMs = options.frameBlockMs;
        return backend;
      };
      return await Promise.race([boot(), timeout]);
    } catch (err) {
      client.disconnect();
      const where = options.url ?? options.seeds?.join(",") ?? "the default address";
      if (lastError !== undefined) {
        throw new EngineError(EngineErrorCode.UNAVAILABLE, `cannot reach Valkey/Redis at ${where}: ${lastError.message}`, {}, { cause: err });
      }
      if (err instanceof EngineError) throw err;
      throw new EngineError(EngineErrorCode.UNAVAILABLE, `cannot start the engine: ${String(err)}`, {}, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The command connection (tests, diagnostics). */
  get connection(): CommandClient {
    return this.client;
  }

  private async fcall(fn: string, a: FcallArgs, mode: CallMode = {}): Promise<unknown> {
    // The fcall*/fcall_ro* methods (not call/callBuffer: iovalkey 0.4 autopipelining drops the
    // command name of callBuffer). The *Buffer variants exist at runtime but not in the typings.
    const c = this.client as unknown as FcallMethods;
    const args: [string, number, ...(string | Buffer)[]] = [fn, a.keys.length, ...a.keys, ...a.argv];
    const send = (): Promise<unknown> => mode.buffer
      ? (mode.ro ? c.fcall_roBuffer(...args) : c.fcallBuffer(...args))
      : (mode.ro ? c.fcall_ro(...args) : c.fcall(...args));
    try {
      try {
        return await send();
      } catch (err) {
        // A node without the library (a new empty master, a flushed server): load it and retry once.
        if (!(err instanceof Error) || !/function not found/i.test(err.message)) throw err;
        await loadLibrary(this.client);
        return await send();
      }
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError(EngineErrorCode.UNAVAILABLE, `${fn}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /** Partition of a new execution: pinned by its idempotency key, else random. */
  private partitionFor(spec: CreateSpec): number {
    return spec.idempotencyKey !== ""
      ? idempotencyPartition(spec.namespace, spec.idempotencyKey, this.partitions)
      : randomInt(this.partitions);
  }

  async create(specs: readonly CreateSpec[]): Promise<CreateOutcome[]> {
    // One FCALL per spec, all issued before awaiting (autopipelined).
    return Promise.all(specs.map(async (spec) =>
      decodeCreate(await this.fcall(FN_CREATE, buildCreate(this.partitionFor(spec), uuid7(), spec)))));
  }

  async claim(req: ClaimRequest): Promise<ClaimOutcome> {
    const leaseIds: string[] = [];
    const attemptIds: string[] = [];
    for (let i = 0; i < req.count; i++) {
      leaseIds.push(randomUUID());
      attemptIds.push(randomUUID());
    }
    return decodeClaim(await this.fcall(FN_CLAIM, buildClaim(req, leaseIds, attemptIds), { buffer: true }));
  }

  async renew(leases: readonly LeaseFence[], sessionId: string, leaseTtlMs: number): Promise<RenewResult[]> {
    const results: RenewResult[] = new Array<RenewResult>(leases.length);
    const byPartition = new Map<number, number[]>();
    leases.forEach((f, i) => {
      const parsed = parseExecutionId(f.executionId, this.partitions);
      if (!parsed) {
        results[i] = { executionId: f.executionId, renewed: false, leaseExpiresAtMs: 0, reason: "NOT_FOUND" };
        return;
      }
      const list = byPartition.get(parsed.partition) ?? [];
      list.push(i);
      byPartition.set(parsed.partition, list);
    });
    await Promise.all([...byPartition.values()].map(async (idx) => {
      const fences = idx.map((i) => leases[i]!);
      const decoded = decodeRenew(await this.fcall(FN_RENEW, buildRenew(fences, this.partitions, sessionId, leaseTtlMs)), fences);
      idx.forEach((i, j) => { results[i] = decoded[j]!; });
    }));
    return results;
  }

  async adopt(fence: LeaseFence, claimant: ClaimantIdentity, leaseTtlMs: number): Promise<RenewResult> {
    const reply = await this.fcall(FN_RENEW, buildRenew([fence], this.partitions, claimant.sessionId, leaseTtlMs, claimant));
    return decodeRenew(reply, [fence])[0]!;
  }

  async release(fence: LeaseFence): Promise<void> {
    decodeRelease(await this.fcall(FN_RELEASE, buildRelease(fence, this.partitions)));
  }

  async progress(fence: LeaseFence, percent: number, message: string): Promise<void> {
    decodeProgress(await this.fcall(FN_PROGRESS, buildProgress(fence, this.partitions, percent, message)));
  }

  async complete(fence: LeaseFence, result: Uint8Array | undefined): Promise<CompleteOutcome> {
    await this.appendsAnswered(fence);
    return decodeComplete(await this.fcall(FN_COMPLETE, buildComplete(fence, this.partitions, result)));
  }

  async fail(fence: LeaseFence, reason: string, category: string, jitterSample: number): Promise<FailResult> {
    await this.appendsAnswered(fence);
    return decodeFail(await this.fcall(FN_FAIL, buildFail(fence, this.partitions, reason, category, jitterSample)));
  }

  async cancelByHolder(fence: LeaseFence, reason: string): Promise<CancelResult> {
    await this.appendsAnswered(fence);
    return decodeCancel(await this.fcall(FN_CANCEL, buildCancelByHolder(fence, this.partitions, reason)));
  }

  async cancelByOperator(executionId: string, reason: string, cancelledBy: string): Promise<CancelResult> {
    return decodeCancel(await this.fcall(FN_CANCEL, buildCancelByOperator(executionId, this.partitions, reason, cancelledBy)));
  }

  async delay(fence: LeaseFence, delayUntilMs: number): Promise<void> {
    await this.appendsAnswered(fence);
    decodeDelay(await this.fcall(FN_DELAY, buildDelay(fence, this.partitions, delayUntilMs)));
  }

  async suspend(fence: LeaseFence, spec: SuspendSpec): Promise<SuspendOutcome> {
    return decodeSuspend(await this.fcall(FN_SUSPEND, buildSuspend(fence, this.partitions, spec)));
  }

  async createWaitpoint(fence: LeaseFence, spec: PendingWaitpointSpec): Promise<void> {
    decodeCreateWaitpoint(await this.fcall(FN_CREATE_WAITPOINT, buildCreateWaitpoint(fence, this.partitions, spec)));
  }

  async deliverSignal(spec: SignalSpec): Promise<SignalOutcome> {
    return decodeDeliverSignal(await this.fcall(FN_DELIVER_SIGNAL, buildDeliverSignal(spec, this.partitions)));
  }

  async resume(executionId: string): Promise<void> {
    decodeResume(await this.fcall(FN_RESUME, buildResume(executionId, this.partitions)));
  }

  async resumeSignals(fence: LeaseFence): Promise<SignalRecord[]> {
    return decodeResumeSignals(await this.fcall(FN_RESUME_SIGNALS, buildResumeSignals(fence, this.partitions), { ro: true, buffer: true }));
  }

  async updateKeyring(mode: "init" | "rotate", keyId: string, secretHex: string, graceMs: number): Promise<KeyringOutcome> {
    return decodeKeyring(await this.fcall(FN_KEYRING, buildKeyring(WAITPOINT_KEYRING_KEY, mode, keyId, secretHex, graceMs)));
  }

  async readKeyring(): Promise<Record<string, string>> {
    try {
      return await this.client.hgetall(WAITPOINT_KEYRING_KEY);
    } catch (err) {
      throw new EngineError(EngineErrorCode.UNAVAILABLE, `keyring: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /**
   * Appends of one lease go out in call order, one FCALL at a time: the first is sent at once;
   * those made while it is in flight are coalesced into the next call (up to 10,000 frames). Low
   * rates pay no batching delay; high rates pay one round trip per batch instead of per frame.
   */
  appendFrame(fence: LeaseFence, frame: FrameSpec, limits: FrameLimits): Promise<AppendFrameOutcome> {
    const key = appendKey(fence);
    return new Promise<AppendFrameOutcome>((resolve, reject) => {
      const pending: PendingAppend = { frame, resolve, reject };
      const queue = this.appendQueues.get(key);
      if (queue) {
        queue.push(pending);
        return;
      }
      this.appendQueues.set(key, []);
      void this.sendAppends(key, fence, [pending], limits);
    });
  }

  private async sendAppends(key: string, fence: LeaseFence, batch: PendingAppend[], limits: FrameLimits): Promise<void> {
    try {
      const reply = await this.fcall(FN_APPEND_FRAME, buildAppendFrames(fence, this.partitions, batch.map((p) => p.frame), limits));
      decodeAppendFrames(reply).forEach((out, i) => {
        if (out instanceof EngineError) batch[i]!.reject(out);
        else batch[i]!.resolve(out);
      });
    } catch (err) {
      // The appends queued behind a failed call fail with it: sent now, they could be stored
      // before the worker's retry of this batch, which the lease's sequence would then take for
      // a re-send (protocol: appends are stored in call order).
      for (const p of [...batch, ...(this.appendQueues.get(key)?.splice(0) ?? [])]) p.reject(err);
    }
    const queue = this.appendQueues.get(key) ?? [];
    if (queue.length === 0) {
      this.appendQueues.delete(key);
      const waiters = this.appendWaiters.get(key);
      this.appendWaiters.delete(key);
      for (const resolve of waiters ?? []) resolve();
      return;
    }
    const next = queue.splice(0, MAX_FRAMES_PER_CALL);
    void this.sendAppends(key, fence, next, limits);
  }

  /**
   * Resolves once the lease's appends in flight or queued have been answered; returns nothing
   * when there are none. A settle (complete, fail, cancel, delay) waits for it, so frames
   * appended before it — even unawaited — are stored before the stream closes. No appends: no wait.
   */
  private appendsAnswered(fence: LeaseFence): Promise<void> | void {
    const key = appendKey(fence);
    if (!this.appendQueues.has(key)) return;
    return new Promise<void>((resolve) => {
      const waiters = this.appendWaiters.get(key);
      if (waiters) waiters.push(resolve);
      else this.appendWaiters.set(key, [resolve]);
    });
  }

  async readFrames(req: FrameReadRequest): Promise<FrameRead> {
    return decodeReadFrames(await this.fcall(FN_READ_FRAMES, buildReadFrames(req, this.partitions), { ro: true, buffer: true }));
  }

  watchFrames(executionId: string, attemptIndex: number, afterId: string, listener: FrameWatchListener): FrameWatch {
    const id = parseExecutionId(executionId, this.partitions);
    if (!id) throw new EngineError(EngineErrorCode.NOT_FOUND, `unknown execution: ${executionId}`, { executionId });
    this.watcher ??= new FrameWatcher(this.client, { blockMs: this.frameBlockMs, batch: 1000 });
    const key = new PartitionKeys(id.partition).frames(id.uuid, attemptIndex);
    return this.watcher.watch(id.partition, key, afterId, listener);
  }

  async describe(executionId: string): Promise<ExecutionRecord> {
    return decodeDescribe(await this.fcall(FN_DESCRIBE, buildDescribe(executionId, this.partitions), { ro: true }));
  }

  async namespaceOf(executionId: string): Promise<string | undefined> {
    const ns = await this.client.hget(executionKeys(executionId, this.partitions).core, "ns");
    return ns ?? undefined;
  }

  async getResult(executionId: string): Promise<ResultRecord> {
    return decodeGetResult(await this.fcall(FN_GET_RESULT, buildGetResult(executionId, this.partitions), { ro: true, buffer: true }));
  }

  private async scan(fn: ScannerFunction, partition: number, batch: number, ...extra: number[]): Promise<ScanResult> {
    return decodeScan(await this.fcall(fn, buildScan(partition, batch, ...extra)), fn);
  }

  expireLeases(partition: number, batch: number): Promise<ScanResult> {
    return this.scan(FN_EXPIRE_LEASES, partition, batch);
  }

  promoteDelayed(partition: number, batch: number): Promise<ScanResult> {
    return this.scan(FN_PROMOTE_DELAYED, partition, batch);
  }

  expireTimeouts(partition: number, batch: number): Promise<ScanResult> {
    return this.scan(FN_EXPIRE_TIMEOUTS, partition, batch);
  }

  purgeTerminal(partition: number, batch: number, retentionMs: number): Promise<ScanResult> {
    return this.scan(FN_PURGE_TERMINAL, partition, batch, retentionMs);
  }

  expireSuspensions(partition: number, batch: number): Promise<ScanResult> {
    return this.scan(FN_EXPIRE_SUSPENSIONS, partition, batch);
  }

  async laneHeads(partition: number): Promise<Map<string, QueuePosition>> {
    return decodeLaneHeads(await this.fcall(FN_LANE_HEADS, buildLaneHeads(partition)));
  }

  async subscribe(listener: (event: EngineEvent) => void): Promise<void> {
    if (this.subscriber) throw new Error("already subscribed");
    const channels: string[] = [];
    for (let p = 0; p < this.partitions; p++) channels.push(new PartitionKeys(p).events());
    this.subscriber = new ShardedSubscriber(this.client, channels, (channel, message) => {
      const event = parseEvent(channel, message);
      if (event) listener(event);
    }, () => listener({ type: "gap" }));
    await this.subscriber.start();
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = null;
    if (sub) await sub.close();
    const watcher = this.watcher;
    this.watcher = null;
    if (watcher) await watcher.close();
    await closeConnection(this.client);
  }
}

/** Decodes one event message (lua/README.md, "Events"); null when malformed. */
export function parseEvent(channel: string, message: string): EngineEvent | null {
  const m = EVENT_CHANNEL.exec(channel);
  if (!m) return null;
  const [type, ...rest] = message.split("|");
  if (type === "w" && rest.length >= 3) {
    const queue = rest.slice(2).join("|");
    const slash = queue.indexOf("/");
    if (slash < 0) return null;
    return {
      type: "wake", partition: Number(m[1]), position: { score: Number(rest[0]), member: rest[1]! },
      namespace: queue.slice(0, slash), lane: queue.slice(slash + 1),
    };
  }
  if (type === "c" && rest.length >= 4) {
    return { type: "cancel", executionId: rest[0]!, leaseId: rest[1]!, by: rest[2]!, reason: rest.slice(3).join("|") };
  }
  if (type === "l" && rest.length >= 3) {
    return { type: "lost", executionId: rest[0]!, leaseId: rest[1]!, reason: rest.slice(2).join("|") };
  }
  return null;
}

/** The append queue of one lease. */
function appendKey(fence: LeaseFence): string {
  return `${fence.executionId}|${fence.leaseId}|${fence.leaseEpoch}|${fence.attemptId}`;
}
