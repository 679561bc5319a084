/**
 * The inference contract: a loaded model scores a batch of feature rows in one call. Engines:
 * `onnx.ts` (onnxruntime-node). The micro-batcher (`micro-batcher.ts`) sits in front of a model and
 * turns many concurrent small requests into few large runs.
 */
export interface ModelSignature {
  readonly inputName: string;
  readonly outputName: string;
  readonly featureCount: number;
  /**
   * For an output of one row per input with several columns ([N, k], e.g. scikit-learn's
   * `probabilities` of [P(class 0), P(class 1)]), the column holding P(event). Default: the last.
   */
  readonly probabilityIndex?: number | undefined;
}

export interface LoadedModel {
  readonly signature: ModelSignature;
  /**
   * Scores `rows` feature vectors packed row-major in `input` (length rows × featureCount) and returns one
   * probability per row. One call is one inference run.
   */
  run(input: Float32Array, rows: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface InferenceEngine {
  readonly name: string;
  load(modelBytes: Uint8Array, signature: ModelSignature): Promise<LoadedModel>;
}
