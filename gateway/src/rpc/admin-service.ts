import { create } from "@bufbuild/protobuf";
import { GetPartitionConfigResponseSchema, type GetPartitionConfigRequest, type GetPartitionConfigResponse } from "../../../sdk-ts/src/gen/flowfabric/v1/admin_pb.js";
import { PartitionConfigSchema } from "../../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
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
