import type { SessionRequest, SessionResponse } from "@flowfabric/sdk/wire";
import type { GatewayError } from "../errors.js";

/**
 * The stream under a WorkerSession, whatever server carries it. `signal` aborts when the stream
 * is gone (peer cancel, dead connection, end); lifecycle decisions hang off it, never off the
 * request side ending.
 */
export interface SessionTransport {
  readonly signal: AbortSignal;
  /** Header getter for the stream's request metadata. */
  header(name: string): string | undefined;
  send(message: SessionResponse): void;
  /** Ends the stream: OK without an error, else the error's status and detail. */
  end(error?: GatewayError): void;
  /**
   * Registers the message handler (called once). A message the transport could not decode
   * arrives, in order, as the INVALID_ARGUMENT error naming it.
   */
  onMessage(handler: (message: SessionRequest | GatewayError) => void): void;
  /**
   * Registers what to do when the worker half-closes its side (it is leaving): the session sends
   * what it still has, then ends the stream. Without a handler the transport ends it at once.
   */
  onRequestsEnd(handler: () => void): void;
}
