import { create } from "@bufbuild/protobuf";
import {
  type GetPartitionConfigRequest, type GetPartitionConfigResponse, GetPartitionConfigResponseSchema, PartitionConfigSchema,
} from "@flowfabric/sdk/wire";
import type { EngineBackend } from "../engine/backend.js";

/** AdminService handlers. */
export class AdminHandlers {
  constructor(private readonly engine: EngineBackend) {}

  async getPartitionConfig(_req: GetPartitionConfigRequest): Promise<GetPartitionConfigResponse> {
    return create(GetPartitionConfigResponseSchema, {
      partitions: create(PartitionConfigSchema, { executionPartitions: this.engine.partitions }),
      libraryVersion: this.engine.libraryVersion,
    });
  }
}
