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
            throw new Error(`input holds ${input.length} values; ${rows} rows × ${signature.featureCount} features = ${rows * signature.featureCount}`);
          }
          const feeds = { [signature.inputName]: new ort.Tensor('float32', input, [rows, signature.featureCount]) };
          const results = await session.run(feeds, [signature.outputName]);
          const output = results[signature.outputName]!.data as Float32Array;
          if (output.length !== rows) throw new Error(`model returned ${output.length} values for ${rows} rows; expected one probability per row`);
          return output;
        },
        release: () => session.release(),
      };
    },
  };
}
