/**
 * Reads what the gateway needs to check an ONNX file against its manifest (I/O names, feature count,
 * metadata, opset) without creating an onnxruntime session.
 *
 * Protobuf decoding is lenient: an empty buffer decodes to an empty ModelProto, and random bytes
 * sometimes decode to a message of unknown fields. So besides catching decode errors, we require the
 * parts every real model has (ir_version, opset_import, a graph with nodes, inputs and outputs).
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

const { onnx } = onnxProto;

/** A number for a fixed size, a string for a symbolic one (e.g. 'batch'), null when unspecified. */
export type OnnxDim = number | string | null;

export interface OnnxTensorInfo {
  name: string;
  shape: OnnxDim[];
  /** ONNX element type name, e.g. 'FLOAT'. */
  elemType: string;
}

export interface OnnxModelInfo {
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
  metadata: Record<string, string>;
  /** Opset of the default ('' / 'ai.onnx') domain; 0 when the model imports only other domains. */
  opsetVersion: number;
  producerName: string;
  irVersion: number;
}

/** protobufjs returns int64 fields as Long objects when the `long` package is present. */
type Int64 = number | { toNumber(): number } | null | undefined;
const toNumber = (v: Int64): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

function notOnnx(why: string): never {
  throw new Error(`not an ONNX model: ${why}`);
}

function tensorInfo(vi: proto.IValueInfoProto, what: string): OnnxTensorInfo {
  if (!vi.name) notOnnx(`graph ${what} without a name`);
  const tensor = vi.type?.tensorType;
  if (!tensor) notOnnx(`graph ${what} '${vi.name}' is not a tensor`);
  const elemType = onnx.TensorProto.DataType[tensor.elemType ?? 0] ?? `UNKNOWN(${tensor.elemType})`;
  // Decoded messages carry oneof defaults on the prototype (dimValue 0, dimParam ''), so which member
  // is really set must be read from the `value` oneof discriminator, not from truthiness.
  const shape = (tensor.shape?.dim ?? []).map((d): OnnxDim => {
    const which = (d as proto.TensorShapeProto.Dimension).value;
    return which === 'dimValue' ? toNumber(d.dimValue) : which === 'dimParam' ? (d.dimParam ?? null) : null;
  });
  return { name: vi.name, shape, elemType };
}

export function readOnnxMetadata(bytes: Uint8Array): OnnxModelInfo {
  if (!(bytes instanceof Uint8Array)) notOnnx(`expected a Uint8Array, got ${typeof bytes}`);
  if (bytes.length === 0) notOnnx('the input is empty (0 bytes)');
  let model: proto.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    // Truncated files land here: a length prefix points past the end of the buffer.
    notOnnx(`protobuf decoding of ${bytes.length} bytes failed, the file is corrupt or truncated (${(e as Error).message})`);
  }
  const irVersion = toNumber(model.irVersion);
  if (!Number.isInteger(irVersion) || irVersion < 1) notOnnx(`ir_version must be a positive integer; got ${irVersion}`);
  if (model.opsetImport.length === 0) notOnnx('it declares no opset_import (not ONNX, or a truncated file)');
  const graph = model.graph;
  if (!graph) notOnnx('it has no graph (not ONNX, or a truncated file)');
  if (!graph.node?.length) notOnnx('its graph has no nodes');

  // Older exporters list initializers among graph inputs; those are weights, not things to feed.
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((vi) => !weights.has(vi.name)).map((vi) => tensorInfo(vi, 'input'));
  const outputs = (graph.output ?? []).map((vi) => tensorInfo(vi, 'output'));
  if (inputs.length === 0) notOnnx('its graph has no inputs');
  if (outputs.length === 0) notOnnx('its graph has no outputs');

  const defaultOpset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const metadata: Record<string, string> = {};
  for (const { key, value } of model.metadataProps) if (key) metadata[key] = value ?? '';
  return {
    inputs,
    outputs,
    metadata,
    opsetVersion: toNumber(defaultOpset?.version),
    producerName: model.producerName,
    irVersion,
  };
}
