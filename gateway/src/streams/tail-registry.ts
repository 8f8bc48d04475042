import type { EngineBackend } from "../engine/backend.js";
import { GatewayError, Reason } from "../errors.js";
import { limitExceeded } from "../rpc/validate.js";
import { TailSession, type TailOptions, type TailSink, type TailTarget } from "./tail-session.js";

export interface TailRegistryOptions extends TailOptions {
  /** Most concurrent tails; beyond it RESOURCE_EXHAUSTED (reason LIMIT_EXCEEDED, limit max_tails). */
  readonly maxTails: number;
}

/** The gateway's live TailStream calls: bounded, and ended on drain. */
export class TailRegistry {
  private readonly sessions = new Set<TailSession>();
  private draining = false;

  constructor(private readonly engine: EngineBackend, private readonly opts: TailRegistryOptions) {}

  /** Tails running now. */
  get active(): number { return this.sessions.size; }

  /** Starts a tail; throws when draining or at the limit (nothing was sent yet). */
  open(target: TailTarget, sink: TailSink): void {
    if (this.draining) throw new GatewayError(Reason.DRAINING, "gateway is draining; resume the tail elsewhere from the last entry id");
    if (this.sessions.size >= this.opts.maxTails) {
      throw limitExceeded("tail", "max_tails", this.opts.maxTails, this.sessions.size + 1);
    }
    const session = new TailSession(this.engine, target, sink, this.opts, (s) => this.sessions.delete(s));
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
