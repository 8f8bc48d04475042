import { type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { FlowFabricError } from "./errors.js";
import type { CompiledGrpcOptions } from "./options.js";
import { grpcServiceDefinition } from "./transport/grpc-service.js";

/** A generated method descriptor with typed input and output. */
export type TypedMethod<I extends DescMessage, O extends DescMessage> = DescMethod & { readonly input: I; readonly output: O };

const definitions = new WeakMap<object, grpc.ServiceDefinition>();

function definitionOf(method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  let def = definitions.get(method.parent);
  if (def === undefined) {
    def = grpcServiceDefinition(method.parent as unknown as GenService<GenServiceMethods>);
    definitions.set(method.parent, def);
  }
  const methodDef = def[method.localName];
  if (methodDef === undefined) throw new Error(`unknown method ${method.parent.typeName}.${method.name}`);
  return methodDef;
}

/** Opens one grpc-js channel to `address` with keepalive enabled (protocol rule 11). */
export function createGrpcClient(address: string, options: CompiledGrpcOptions): grpc.Client {
  return new grpc.Client(address, options.credentials ?? grpc.credentials.createInsecure(), {
    "grpc.keepalive_time_ms": options.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes,
    "grpc.max_send_message_length": -1,
  });
}

/** Request metadata carrying the bearer token, when one is configured. */
export function callMetadata(authToken: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (authToken !== undefined) metadata.set("authorization", `Bearer ${authToken}`);
  return metadata;
}

/** Performs one unary call; failures reject with a {@link FlowFabricError}. */
export function unaryCall<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: TypedMethod<I, O>,
  request: MessageShape<I>,
  metadata: grpc.Metadata,
  timeoutMs: number,
): Promise<MessageShape<O>> {
  const def = definitionOf(method);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<MessageShape<I>, MessageShape<O>>(
      def.path,
      def.requestSerialize as (value: MessageShape<I>) => Buffer,
      def.responseDeserialize as (bytes: Buffer) => MessageShape<O>,
      request,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (error, response) => {
        if (error !== null) reject(FlowFabricError.fromServiceError(error));
        else if (response === undefined) reject(FlowFabricError.fromServiceError(new Error("empty response")));
        else resolve(response);
      },
    );
  });
}

/** Opens a bidirectional stream. */
export function openBidiStream<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: TypedMethod<I, O>,
  metadata: grpc.Metadata,
): grpc.ClientDuplexStream<MessageShape<I>, MessageShape<O>> {
  const def = definitionOf(method);
  return client.makeBidiStreamRequest<MessageShape<I>, MessageShape<O>>(
    def.path,
    def.requestSerialize as (value: MessageShape<I>) => Buffer,
    def.responseDeserialize as (bytes: Buffer) => MessageShape<O>,
    metadata,
  );
}

/** Waits until the channel is connected; rejects with the grpc-js error after `timeoutMs`. */
export function waitForReady(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (error) => (error === undefined || error === null ? resolve() : reject(error)));
  });
}
