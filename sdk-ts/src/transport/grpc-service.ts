import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";

/**
 * Turns a protobuf-es service descriptor into a grpc-js service definition, so the gateway's
 * grpc-js server and the SDK's grpc-js clients speak the generated messages directly
 * (`toBinary`/`fromBinary`), with no second code generator.
 */
export function grpcServiceDefinition<S extends GenServiceMethods>(service: GenService<S>): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (value: unknown) => Buffer.from(toBinary(input, value as MessageShape<DescMessage>)),
      requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
      responseSerialize: (value: unknown) => Buffer.from(toBinary(output, value as MessageShape<DescMessage>)),
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    };
  }
  return def as grpc.ServiceDefinition;
}

/** A grpc-js client constructor for a protobuf-es service (methods named by `localName`). */
export function grpcClientConstructor<S extends GenServiceMethods>(service: GenService<S>): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.typeName);
}
