import { create } from "@bufbuild/protobuf";
import {
  type GetPartitionConfigRequest, type GetPartitionConfigResponse, GetPartitionConfigResponseSchema, PartitionConfigSchema,
  RotateWaitpointSecretResponseSchema, type RotateWaitpointSecretRequest, type RotateWaitpointSecretResponse,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError } from "../errors.js";
import type { WaitpointKeyring } from "../signals/waitpoint-keyring.js";

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** Longest grace accepted for a rotated-out key: one year. */
const MAX_GRACE_MS = 365 * 24 * 3600 * 1000;

/** AdminService handlers. */
export class AdminHandlers {
  constructor(
    private readonly engine: EngineBackend,
    private readonly keyring: WaitpointKeyring,
    /** Grace of the previous key when a rotation does not say, in ms. */
    private readonly defaultGraceMs: number,
  ) {}

  async getPartitionConfig(_req: GetPartitionConfigRequest): Promise<GetPartitionConfigResponse> {
    return create(GetPartitionConfigResponseSchema, {
      partitions: create(PartitionConfigSchema, { executionPartitions: this.engine.partitions }),
      libraryVersion: this.engine.libraryVersion,
    });
  }

  async rotateWaitpointSecret(req: RotateWaitpointSecretRequest): Promise<RotateWaitpointSecretResponse> {
    if (req.newKeyId !== "" && !KEY_ID.test(req.newKeyId)) throw GatewayError.invalid("new_key_id", "must be 1..32 characters of [A-Za-z0-9_-]");
    if (req.graceMs !== undefined && req.graceMs > BigInt(MAX_GRACE_MS)) throw GatewayError.invalid("grace_ms", `must be at most ${MAX_GRACE_MS} ms`);
    const graceMs = req.graceMs === undefined ? this.defaultGraceMs : Number(req.graceMs);
    const out = await this.keyring.rotate(req.newKeyId, graceMs);
    return create(RotateWaitpointSecretResponseSchema, {
      keyId: out.currentKeyId, previousKeyId: out.previousKeyId, previousKeyExpiresAtMs: BigInt(out.previousExpiresAtMs),
    });
  }
}
