import type { EngineBackend } from "../engine/backend.js";
import { GatewayError, Reason } from "../errors.js";
import { limitExceeded } from "../rpc/validate.js";
import { PerKeyLimit } from "../server/per-key-limit.js";
import { TailSession, type TailOptions, type TailSink, type TailTarget } from "./tail-session.js";

export interface TailRegistryOptions extends TailOptions {
  /** Most concurrent tails; beyond it RESOURCE_EXHAUSTED (reason LIMIT_EXCEEDED, limit max_tails). */
  readonly maxTails: number;
  /** Most concurrent tails of one client (server/per-key-limit.ts clientKey); beyond it RESOURCE_EXHAUSTED (limit max_tails_per_client). */
  readonly maxTailsPerClient: number;
}

/** The gateway's live TailStream calls: bounded, and ended on drain. */
export class TailRegistry {
  private readonly sessions = new Set<TailSession>();
  private draining = false;
  private readonly perClient: PerKeyLimit;

  constructor(private readonly engine: EngineBackend, private readonly opts: TailRegistryOptions) {
    this.perClient = new PerKeyLimit("tail", "max_tails_per_client", opts.maxTailsPerClient);
  }

  /** Tails running now. */
  get active(): number { return this.sessions.size; }

  /** Starts a tail for `client`; throws when draining or at a limit (nothing was sent yet). */
  open(target: TailTarget, sink: TailSink, client: string): void {
    if (this.draining) throw new GatewayError(Reason.DRAINING, "gateway is draining; resume the tail elsewhere from the last entry id");
    if (this.sessions.size >= this.opts.maxTails) {
      throw limitExceeded("tail", "max_tails", this.opts.maxTails, this.sessions.size + 1);
    }
    const release = this.perClient.acquire(client);
    if (release instanceof GatewayError) throw release;
    const session = new TailSession(this.engine, target, sink, this.opts, (s) => {
      this.sessions.delete(s);
      release();
    });
    this.sessions.add(session);
    session.start();
  }

  /** Refuses new tails and ends every running one with UNAVAILABLE (reason DRAINING). */
  drain(): void {
    this.draining = true;
    for (const s of [...this.sessions]) {
      s.stop(new GatewayError(Reason.DRAINING, "gateway is draining; resume the tail elsewhere from the last entry id"));
    }
  }
}
