/** ff_keyring: installs (first boot) or rotates the waitpoint token keyring. Secrets never leave the gateway's memory but for this call. */
import type { KeyringOutcome } from "../signal-types.js";
import { int, num, ok, str, type FcallArgs } from "./common.js";

export const FN_KEYRING = "ff_keyring";

export function buildKeyring(key: string, mode: "init" | "rotate", keyId: string, secretHex: string, graceMs: number): FcallArgs {
  return { keys: [key], argv: [mode, keyId, secretHex, int(graceMs)] };
}

export function decodeKeyring(reply: unknown): KeyringOutcome {
  const r = ok(reply, FN_KEYRING);
  return {
    status: str(r[2]) as KeyringOutcome["status"],
    currentKeyId: str(r[3]),
    previousKeyId: str(r[4]),
    previousExpiresAtMs: num(r[5]),
    droppedKeys: num(r[6]),
  };
}
