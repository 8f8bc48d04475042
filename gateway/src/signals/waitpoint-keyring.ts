import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { EngineBackend } from "../engine/backend.js";
import type { KeyringOutcome } from "../engine/signal-types.js";
import type { Logger } from "../logger.js";

/**
 * Waitpoint tokens and the keyring that signs them (docs/signals.md, "Tokens").
 *
 * A token is `ffw1.<key id>.<expires at ms>.<mac>`, where mac = base64url(HMAC-SHA256(secret of
 * the key, "ffw1|<execution id>|<waitpoint id>|<expires at ms>")) and expires at 0 means none.
 * The gateway mints tokens when a waitpoint is created and checks them on DeliverSignal BEFORE any
 * store lookup, with a constant-time compare: every bad token gets the same answer, so a caller
 * without a genuine token learns nothing about executions or waitpoints. Tokens are not stored.
 *
 * The keyring lives in Valkey (`ff:keyring:waitpoint`, written only by ff_keyring) so every
 * gateway of a deployment shares it and it persists with the store (the embedded server's AOF
 * under the data dir). On first boot a gateway installs key `k1`: the secret from
 * FLOWFABRIC_WAITPOINT_SECRET (hex) when set, else 32 random bytes. Rotation installs a new
 * current key; the previous one keeps verifying until its grace period ends. Gateways re-read the
 * keyring every `refreshMs` and whenever a token names a key id they do not know. Secrets are
 * never logged, described or exported.
 */
export const TOKEN_VERSION = "ffw1";
/** Longest token accepted (anything longer is refused before parsing). */
export const MAX_TOKEN_BYTES = 256;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const DIGITS = /^(0|[1-9]\d{0,15})$/;
/** An unknown key id triggers at most one re-read per this many ms. */
const UNKNOWN_KID_RELOAD_MS = 1000;

interface Key {
  readonly secret: Buffer;
  /** Unix ms after which the key is refused; Infinity for the current key. */
  readonly expiresAtMs: number;
}

export interface WaitpointKeyringOptions {
  /** Secret (hex, 32..256 characters) of the first key on a deployment's first boot; random when absent. */
  readonly initialSecretHex?: string | undefined;
  /** Re-read interval of the shared keyring, in ms. */
  readonly refreshMs: number;
  readonly log: Logger;
}

export class WaitpointKeyring {
  private keys = new Map<string, Key>();
  private currentId = "";
  private lastUnknownReloadMs = 0;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly engine: EngineBackend, private readonly log: Logger) {}

  /** Loads the deployment's keyring, installing the first key when there is none. */
  static async open(engine: EngineBackend, options: WaitpointKeyringOptions): Promise<WaitpointKeyring> {
    const ring = new WaitpointKeyring(engine, options.log);
    await ring.reload();
    if (ring.currentId === "") {
      const secret = options.initialSecretHex ?? randomBytes(32).toString("hex");
      await engine.updateKeyring("init", "k1", secret, 0);
      await ring.reload();
    } else if (options.initialSecretHex !== undefined) {
      const k1 = ring.keys.get("k1");
      if (k1 === undefined || !k1.secret.equals(Buffer.from(options.initialSecretHex, "hex"))) {
        options.log.warn("FLOWFABRIC_WAITPOINT_SECRET differs from the stored keyring, which wins; rotate with AdminService.RotateWaitpointSecret");
      }
    }
    ring.timer = setInterval(() => {
      ring.reload().catch((err: unknown) => ring.log.warn("waitpoint keyring refresh failed", { err: String(err) }));
    }, options.refreshMs);
    ring.timer.unref();
    return ring;
  }

  /** Id of the key that signs new tokens. */
  get currentKeyId(): string {
    return this.currentId;
  }

  /** A token for (execution, waitpoint) valid until `expiresAtMs` (0 = no expiry), signed with the current key. */
  mint(executionId: string, waitpointId: string, expiresAtMs: number): string {
    const key = this.keys.get(this.currentId);
    if (key === undefined) throw new Error("waitpoint keyring not loaded");
    return `${TOKEN_VERSION}.${this.currentId}.${expiresAtMs}.${mac(key.secret, executionId, waitpointId, String(expiresAtMs))}`;
  }

  /**
   * True only for a genuine, unexpired token of this (execution, waitpoint) signed by a key that
   * is current or within its grace. Looks nothing up in the store (but may re-read the keyring).
   */
  async verify(executionId: string, waitpointId: string, token: string, nowMs = Date.now()): Promise<boolean> {
    if (token.length === 0 || token.length > MAX_TOKEN_BYTES) return false;
    const parts = token.split(".");
    if (parts.length !== 4 || parts[0] !== TOKEN_VERSION) return false;
    const [, kid = "", exp = "", given = ""] = parts;
    if (!KEY_ID.test(kid) || !DIGITS.test(exp)) return false;
    if (!this.keys.has(kid) && nowMs - this.lastUnknownReloadMs >= UNKNOWN_KID_RELOAD_MS) {
      this.lastUnknownReloadMs = nowMs;
      await this.reload();
    }
    const key = this.keys.get(kid);
    if (key === undefined || key.expiresAtMs <= nowMs) return false;
    const expiresAtMs = Number(exp);
    if (expiresAtMs !== 0 && expiresAtMs <= nowMs) return false;
    const expected = Buffer.from(mac(key.secret, executionId, waitpointId, exp), "utf8");
    const actual = Buffer.from(given, "utf8");
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /**
   * Installs a new current key (random secret; id generated when empty). Tokens of the previous
   * key verify for `graceMs` more (0: refused at once).
   */
  async rotate(newKeyId: string, graceMs: number): Promise<KeyringOutcome> {
    const kid = newKeyId !== "" ? newKeyId : `k${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
    const out = await this.engine.updateKeyring("rotate", kid, randomBytes(32).toString("hex"), graceMs);
    await this.reload();
    this.log.info("waitpoint secret rotated", { keyId: out.currentKeyId, previousKeyId: out.previousKeyId, previousExpiresAtMs: out.previousExpiresAtMs });
    return out;
  }

  /** Re-reads the shared keyring. */
  async reload(): Promise<void> {
    const raw = await this.engine.readKeyring();
    const current = raw["current"] ?? "";
    const keys = new Map<string, Key>();
    for (const [field, value] of Object.entries(raw)) {
      if (!field.startsWith("secret:")) continue;
      const kid = field.slice("secret:".length);
      const expires = raw[`expires:${kid}`];
      keys.set(kid, { secret: Buffer.from(value, "hex"), expiresAtMs: kid === current ? Infinity : Number(expires ?? 0) });
    }
    this.keys = keys;
    this.currentId = current;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function mac(secret: Buffer, executionId: string, waitpointId: string, exp: string): string {
  return createHmac("sha256", secret).update(`${TOKEN_VERSION}|${executionId}|${waitpointId}|${exp}`).digest("base64url");
}
