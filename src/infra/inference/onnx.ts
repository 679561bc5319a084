import * as ort from 'onnxruntime-node';
import type { InferenceEngine, LoadedModel, ModelSignature } from './engine.js';

/**
 * onnxruntime-node sessions. One intra-op thread per session: our models are small, where thread
 * hand-off costs more than it saves, and the gateway's own work needs the other core.
 */
export function createOnnxEngine(): InferenceEngine {
  return {
    name: 'onnxruntime-node',
    async load(modelBytes: Uint8Array, signature: ModelSignature): Promise<LoadedModel> {
      const session = await ort.InferenceSession.create(modelBytes, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
      });
      if (!session.inputNames.includes(signature.inputName)) {
        await session.release();
        throw new Error(`model has no input named "${signature.inputName}" (it has: ${session.inputNames.join(', ')})`);
      }
      if (!session.outputNames.includes(signature.outputName)) {
        await session.release();
        throw new Error(`model has no output named "${signature.outputName}" (it has: ${session.outputNames.join(', ')})`);
      }
      return {
        signature,
        async run(input, rows) {
          if (input.length !== rows * signature.featureCount) {
            throw new Error(
              `input holds ${input.length} values; ${rows} rows × ${signature.featureCount} features = ${rows * signature.featureCount}`,
            );
          }
          const feeds = { [signature.inputName]: new ort.Tensor('float32', input, [rows, signature.featureCount]) };
          const results = await session.run(feeds, [signature.outputName]);
          const output = results[signature.outputName]!.data as Float32Array;
          if (output.length === rows) return output;
          return probabilityColumn(output, rows, signature.probabilityIndex);
        },
        release: () => session.release(),
      };
    },
  };
}

/** P(event) from an [N, k] output: the `index` column (default the last, as in [P(no), P(yes)]). */
function probabilityColumn(output: Float32Array, rows: number, index: number | undefined): Float32Array {
  const width = output.length / rows;
  if (!Number.isInteger(width) || width < 2) {
    throw new Error(
      `model returned ${output.length} values for ${rows} rows; expected one probability per row, or one row of class probabilities per input`,
    );
  }
  const column = index ?? width - 1;
  if (column >= width) throw new Error(`output has ${width} columns per row; probabilityIndex ${column} is out of range`);
  const probabilities = new Float32Array(rows);
  for (let row = 0; row < rows; row++) probabilities[row] = output[row * width + column]!;
  return probabilities;
}
