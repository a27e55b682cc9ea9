/**
 * gRPC server reflection (`grpc.reflection.v1` and `grpc.reflection.v1alpha`) on connect-node,
 * which ships none. With it, `buf curl --list-services` and grpcurl discover and call the API
 * with no .proto files. The answers come from the descriptors embedded in the generated code,
 * so they always match what the server actually serves.
 *
 * Reflection is a bidirectional stream: it works over HTTP/2 only (gRPC, or Connect over h2).
 */
import { create, toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";

/** The two reflection services, for callers that list what the server offers. */
export const reflectionServices: readonly DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

/** The request's oneof, shared by v1 and v1alpha (their shapes are identical). */
type ReflectionQuestion = v1.ServerReflectionRequest["messageRequest"];

/** The response's oneof, as plain init data so each version can wrap it in its own message. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Everything reflection can answer, indexed once: files by name, the file defining each
 * fully qualified symbol, and extensions by the message they extend.
 */
export class DescriptorIndex {
  readonly #serviceNames: string[];
  readonly #fileByName = new Map<string, DescFile>();
  readonly #fileBySymbol = new Map<string, DescFile>();
  /** "pkg.Message" -> extension number -> defining file. */
  readonly #extensions = new Map<string, Map<number, DescFile>>();
  readonly #messageTypes = new Set<string>();
  readonly #encoded = new WeakMap<DescFile, Uint8Array>();

  /** Index `services` and every file they depend on, transitively. */
  constructor(services: Iterable<DescService>) {
    const names = new Set<string>();
    for (const service of services) {
      names.add(service.typeName);
      this.#addFile(service.file);
    }
    this.#serviceNames = [...names].sort();
  }

  /** Fully qualified names of the services, sorted. */
  get serviceNames(): readonly string[] {
    return this.#serviceNames;
  }

  /** Answer one reflection question. Never throws: problems become an error response. */
  answer(question: ReflectionQuestion): ReflectionAnswer {
    switch (question.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.#serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.#fileByName.get(question.value);
        return file ? this.#files(file) : notFound(`file "${question.value}" not found`);
      }
      case "fileContainingSymbol": {
        const symbol = question.value.startsWith(".") ? question.value.slice(1) : question.value;
        const file = this.#fileBySymbol.get(symbol);
        return file ? this.#files(file) : notFound(`symbol "${question.value}" not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = question.value;
        const file = this.#extensions.get(containingType)?.get(extensionNumber);
        return file ? this.#files(file) : notFound(`extension ${extensionNumber} of "${containingType}" not found`);
      }
      case "allExtensionNumbersOfType": {
        const typeName = question.value;
        if (!this.#messageTypes.has(typeName)) return notFound(`message type "${typeName}" not found`);
        const numbers = [...(this.#extensions.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: typeName, extensionNumber: numbers } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "the request sets no message_request" } };
    }
  }

  /** The file first, then its dependencies, transitively, each once. */
  #files(file: DescFile): ReflectionAnswer {
    const seen = new Set<DescFile>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (seen.has(f)) return;
      seen.add(f);
      out.push(this.#encode(f));
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  #encode(file: DescFile): Uint8Array {
    let bytes = this.#encoded.get(file);
    if (!bytes) this.#encoded.set(file, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  #addFile(file: DescFile): void {
    // file.name drops ".proto"; clients ask for (and dependencies name) the full path.
    if (this.#fileByName.has(file.proto.name)) return;
    this.#fileByName.set(file.proto.name, file);
    for (const dep of file.dependencies) this.#addFile(dep);
    for (const service of file.services) {
      this.#fileBySymbol.set(service.typeName, file);
      for (const method of service.methods) this.#fileBySymbol.set(`${service.typeName}.${method.name}`, file);
    }
    for (const message of file.messages) this.#addMessage(message, file);
    for (const en of file.enums) this.#addEnum(en.typeName, en.values, file);
    for (const ext of file.extensions) this.#addExtension(ext.typeName, ext.extendee.typeName, ext.number, file);
  }

  #addMessage(message: DescMessage, file: DescFile): void {
    this.#fileBySymbol.set(message.typeName, file);
    this.#messageTypes.add(message.typeName);
    for (const field of message.fields) this.#fileBySymbol.set(`${message.typeName}.${field.name}`, file);
    for (const oneof of message.oneofs) this.#fileBySymbol.set(`${message.typeName}.${oneof.name}`, file);
    for (const nested of message.nestedMessages) this.#addMessage(nested, file);
    for (const en of message.nestedEnums) this.#addEnum(en.typeName, en.values, file);
    for (const ext of message.nestedExtensions) this.#addExtension(ext.typeName, ext.extendee.typeName, ext.number, file);
  }

  #addEnum(typeName: string, values: readonly { name: string }[], file: DescFile): void {
    this.#fileBySymbol.set(typeName, file);
    // Enum values are scoped like siblings of their enum (C++ scoping rules).
    const scope = typeName.includes(".") ? typeName.slice(0, typeName.lastIndexOf(".") + 1) : "";
    for (const value of values) this.#fileBySymbol.set(scope + value.name, file);
  }

  #addExtension(typeName: string, extendee: string, number: number, file: DescFile): void {
    this.#fileBySymbol.set(typeName, file);
    let byNumber = this.#extensions.get(extendee);
    if (!byNumber) this.#extensions.set(extendee, (byNumber = new Map()));
    byNumber.set(number, file);
  }
}

function notFound(message: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}

/**
 * Register both reflection services on `router`, describing `services` plus the reflection
 * services themselves. Call it after the application's services are registered, or pass them.
 */
export function registerReflection(router: ConnectRouter, services: Iterable<DescService>): DescriptorIndex {
  const index = new DescriptorIndex([...services, ...reflectionServices]);
  router.service(v1.ServerReflection, {
    serverReflectionInfo: (requests) =>
      answerEach(requests, (req) =>
        create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: index.answer(req.messageRequest) }),
      ),
  });
  router.service(v1alpha.ServerReflection, {
    // The v1alpha oneof has the same cases and fields as v1.
    serverReflectionInfo: (requests) =>
      answerEach(requests, (req) =>
        create(v1alpha.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: index.answer(req.messageRequest as ReflectionQuestion),
        }),
      ),
  });
  return index;
}

/** One answer per question, in order: both reflection versions are this bidirectional stream. */
async function* answerEach<Q, A>(requests: AsyncIterable<Q>, answer: (req: Q) => A): AsyncGenerator<A> {
  for await (const req of requests) yield answer(req);
}
