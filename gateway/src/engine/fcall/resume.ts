/** ff_resume: an operator resumes a suspended execution (unfenced). */
import { executionKeys, ok, type FcallArgs } from "./common.js";

export const FN_RESUME = "ff_resume";

export function buildResume(executionId: string, partitions: number): FcallArgs {
  const k = executionKeys(executionId, partitions);
  return { keys: [k.prefix, k.core], argv: [] };
}

export function decodeResume(reply: unknown): void {
  ok(reply, FN_RESUME);
}
