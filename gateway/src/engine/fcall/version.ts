/** ff_version (FCALL_RO): the loaded library version. */
import { num, type FcallArgs, type Raw } from "./common.js";

export const FN_VERSION = "ff_version";

export function buildVersion(): FcallArgs {
  return { keys: [], argv: [] };
}

export function decodeVersion(reply: unknown): number {
  return num(reply as Raw);
}
