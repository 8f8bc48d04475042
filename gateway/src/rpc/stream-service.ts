import { create } from "@bufbuild/protobuf";
import {
  ReadStreamResponseSchema,
  type ReadStreamRequest, type ReadStreamResponse, type TailStreamRequest,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError } from "../errors.js";
import type { TailRegistry } from "../streams/tail-registry.js";
import type { TailSink } from "../streams/tail-session.js";
import { closedMessage, frameMessage, streamModeMessage } from "./frames.js";
import * as v from "./validate.js";

const DEFAULT_READ_COUNT = 100;
const MAX_READ_COUNT = 10_000;

/** StreamService handlers (transport-independent). */
export class StreamHandlers {
  constructor(private readonly engine: EngineBackend, private readonly limits: v.Limits, private readonly tails: TailRegistry) {}

  async readStream(req: ReadStreamRequest): Promise<ReadStreamResponse> {
    const executionId = v.executionIdOf(req.executionId, "execution_id", this.limits);
    const afterId = v.entryId(req.afterEntryId, "after_entry_id");
    const toId = v.entryId(req.toEntryId, "to_entry_id");
    if (req.count > MAX_READ_COUNT) throw GatewayError.invalid("count", `must be at most ${MAX_READ_COUNT}`);
    const count = req.count === 0 ? DEFAULT_READ_COUNT : req.count;
    const r = await this.engine.readFrames({ executionId, attemptIndex: req.attemptIndex, afterId, toId, count });
    const last = r.entries[r.entries.length - 1];
    return create(ReadStreamResponseSchema, {
      frames: r.entries.flatMap((e) => (e.kind === "frame" ? [frameMessage(e)] : [])),
      nextCursor: last?.entryId ?? afterId,
      more: r.entries.length >= count,
      ...(r.closed ? { closed: closedMessage(r.closed.reason, r.closed.closedAtMs, r.closed.entryId) } : {}),
      mode: streamModeMessage(r.mode),
      frameCount: BigInt(r.frameCount),
      summary: r.summary ?? new Uint8Array(0),
      summaryVersion: BigInt(r.summaryVersion),
    });
  }

  /**
   * Validates and starts a tail for `client` (server/per-key-limit.ts clientKey); throws (before
   * anything is sent) on a bad request or at a limit.
   */
  tailStream(req: TailStreamRequest, sink: TailSink, client: string): void {
    const executionId = v.executionIdOf(req.executionId, "execution_id", this.limits);
    const afterId = v.entryId(req.afterEntryId, "after_entry_id");
    this.tails.open({ executionId, attemptIndex: req.attemptIndex, afterId }, sink, client);
  }
}
