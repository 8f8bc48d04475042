import { createHash } from "node:crypto";
import type { GatewayError } from "../errors.js";
import { limitExceeded } from "../rpc/validate.js";

/**
 * At most `max` live holders per key (Sessions per HTTP/2 connection, tails per client). One
 * concept for every per-client cap: `acquire` either counts one more holder and returns its
 * release, or returns RESOURCE_EXHAUSTED (reason LIMIT_EXCEEDED) naming the limit.
 */
export class PerKeyLimit {
  private readonly counts = new Map<string, number>();

  constructor(
    /** Field named in the error (what was refused, e.g. "session"). */
    private readonly field: string,
    /** Limit named in the error (the option's snake_case name, e.g. "max_sessions_per_connection"). */
    private readonly limit: string,
    private readonly max: number,
  ) {}

  /** Holders of `key` right now. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Counts one more holder of `key` and returns its release (idempotent), or the refusal. */
  acquire(key: string): (() => void) | GatewayError {
    const n = this.count(key);
    if (n >= this.max) return limitExceeded(this.field, this.limit, this.max, n + 1);
    this.counts.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.count(key) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }
}

/** The host part of a peer address ("1.2.3.4:5678", "[::1]:5678" -> "1.2.3.4", "::1"). */
export function peerHost(peer: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(peer) ?? /^(.*):\d+$/.exec(peer);
  return m ? m[1]! : peer;
}

/**
 * Who a client is, for per-client caps: its bearer token (hashed: the key may be logged) when it
 * sends one, else its address (host only: every connection of one machine counts together).
 */
export function clientKey(authorization: string | undefined, peer: string): string {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
  if (token) return `token:${createHash("sha256").update(token).digest("hex").slice(0, 16)}`;
  return `addr:${peerHost(peer)}`;
}
