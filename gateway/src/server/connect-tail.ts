import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { TailStreamRequest, TailStreamResponse } from "@flowfabric/sdk/wire";
import type { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { TailSink } from "../streams/tail-session.js";
import { connectError } from "./connect-error.js";

/**
 * StreamService.TailStream over Connect: the tail's messages, pulled by the transport
 * (back-pressure). A client that goes away — the call's signal aborts, or a write to its response
 * fails and the transport throws that error in here (connect-node does, e.g. ERR_STREAM_DESTROYED)
 * — ends the tail quietly: that is normal, as on the gRPC listener, not an internal error.
 * `streams.tailStream` may be async (the listener checks access first); it throws before anything is sent.
 */
export async function* connectTail(streams: { tailStream(req: TailStreamRequest, sink: TailSink, client: string): void | Promise<void> }, req: TailStreamRequest, ctx: HandlerContext, log: Logger, client: string): AsyncGenerator<TailStreamResponse> {
  const queue: TailStreamResponse[] = [];
  const ac = new AbortController();
  let done = false;
  let failure: GatewayError | undefined;
  let wake = null as (() => void) | null;
  let drained = null as (() => void) | null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onAbort = (): void => {
    ac.abort();
    done = true;
    notify();
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const sink: TailSink = {
    signal: ac.signal,
    send: (message) => {
      queue.push(message);
      notify();
      return queue.length < 16;
    },
    onDrain: (callback) => { drained = callback; },
    end: (error) => {
      done = true;
      failure = error;
      notify();
    },
  };
  try {
    await streams.tailStream(req, sink, client);
    for (;;) {
      while (queue.length > 0 && !ac.signal.aborted) {
        try {
          yield queue.shift()!;
        } catch (err) {
          // Thrown in by the transport: writing to the client failed, so the client is gone.
          throw new ConnectError("the client went away", Code.Canceled, undefined, undefined, err);
        }
        if (queue.length === 0) drained?.();
      }
      if (done) break;
      await new Promise<void>((resolve) => { wake = resolve; });
    }
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.Canceled) throw err;
    throw connectError(err, log);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    ac.abort();
  }
  if (failure && !ctx.signal.aborted) throw connectError(failure, log);
}
