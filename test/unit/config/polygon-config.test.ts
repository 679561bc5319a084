import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { configProblems } from '../../helpers/config.js';

describe('polygon provider configuration', () => {
  test('the public endpoints by default; a trailing slash on the REST URL is dropped', () => {
    assert.deepEqual(loadConfig({ MARKET_PROVIDER: 'polygon', POLYGON_API_KEY: 'pk_1' }).marketProvider, {
      kind: 'polygon',
      apiKey: 'pk_1',
      restUrl: 'https://api.polygon.io',
      streamUrl: 'wss://socket.polygon.io/stocks',
      symbols: undefined,
      backfillDays: 200,
      maxSymbols: undefined,
    });
    const custom = loadConfig({
      MARKET_PROVIDER: 'polygon',
      POLYGON_API_KEY: 'pk_1',
      POLYGON_REST_URL: 'http://127.0.0.1:9000/',
      POLYGON_STREAM_URL: 'off',
      POLYGON_SYMBOLS: 'AAPL, MSFT,AAPL',
      POLYGON_MAX_SYMBOLS: '30',
    }).marketProvider;
    assert.deepEqual(custom, {
      kind: 'polygon',
      apiKey: 'pk_1',
      restUrl: 'http://127.0.0.1:9000',
      streamUrl: undefined,
      symbols: ['AAPL', 'MSFT'],
      backfillDays: 200,
      maxSymbols: 30,
    });
  });

  test('the key is required, never echoed; bad values name their variable; replay excludes it', () => {
    assert.deepEqual(Object.keys(configProblems({ MARKET_PROVIDER: 'polygon' })), ['POLYGON_API_KEY']);
    const problems = configProblems({
      MARKET_PROVIDER: 'polygon',
      POLYGON_API_KEY: 'has a space key',
      POLYGON_STREAM_URL: 'https://x',
      POLYGON_BACKFILL_DAYS: '1',
      POLYGON_MAX_SYMBOLS: '0',
    });
    assert.deepEqual(Object.keys(problems).sort(), [
      'POLYGON_API_KEY',
      'POLYGON_BACKFILL_DAYS',
      'POLYGON_MAX_SYMBOLS',
      'POLYGON_STREAM_URL',
    ]);
    assert.doesNotMatch(problems.POLYGON_API_KEY!, /space key/);
    const replay = configProblems({ MARKET_PROVIDER: 'polygon', POLYGON_API_KEY: 'k', MARKET_REPLAY_FROM: '2020-01-02' });
    assert.match(replay.MARKET_REPLAY_FROM!, /cannot be combined with MARKET_PROVIDER=polygon/);
  });
});
