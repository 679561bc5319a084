/**
 * What Sibyl can predict. A strategy names an event and its horizon; model versions serve it.
 * Horizons count bars of the data the model was trained on (trading days for the committed models).
 */
export interface StrategyDefinition {
  readonly name: string;
  readonly horizon: string;
  readonly horizonBars: number;
  readonly description: string;
}

export const STRATEGIES: readonly StrategyDefinition[] = [
  {
    name: 'direction-1d',
    horizon: '1d',
    horizonBars: 1,
    description: 'Will the adjusted close be higher one trading day after the last bar?',
  },
  {
    name: 'direction-5d',
    horizon: '5d',
    horizonBars: 5,
    description: 'Will the adjusted close be higher five trading days after the last bar?',
  },
];

export const DEFAULT_STRATEGY = 'direction-1d';

export function findStrategy(name: string): StrategyDefinition | undefined {
  return STRATEGIES.find((s) => s.name === name);
}
