import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { configProblems } from '../../helpers/config.js';

const problemsOf = configProblems;

describe('market provider configuration', () => {
  test('the default stays the bars store (stored bars or the synthetic market)', () => {
    assert.deepEqual(loadConfig({}).marketProvider, { kind: 'store' });
  });

  test('alpaca: the public endpoints and iex by default; the stream URL carries the feed', () => {
    const provider = loadConfig({ MARKET_PROVIDER: 'alpaca', ALPACA_KEY_ID: 'PKABC', ALPACA_SECRET_KEY: 's3cret' }).marketProvider;
    assert.deepEqual(provider, {
      kind: 'alpaca',
      keyId: 'PKABC',
      secretKey: 's3cret',
      feed: 'iex',
      dataUrl: 'https://data.alpaca.markets',
      streamUrl: 'wss://stream.data.alpaca.markets/v2/iex',
      symbols: undefined,
      backfillDays: 200,
    });
  });

  test('base URLs: a stream URL without a path gets /v2/{feed}; one with a path is kept; a trailing /v2 on the data URL is not doubled', () => {
    const keys = { MARKET_PROVIDER: 'alpaca', ALPACA_KEY_ID: 'k', ALPACA_SECRET_KEY: 's', ALPACA_FEED: 'sip' };
    const bare = loadConfig({
      ...keys,
      ALPACA_STREAM_URL: 'ws://127.0.0.1:9000',
      ALPACA_DATA_URL: 'http://127.0.0.1:9001/v2/',
    }).marketProvider;
    assert.ok(bare.kind === 'alpaca');
    assert.equal(bare.streamUrl, 'ws://127.0.0.1:9000/v2/sip');
    assert.equal(bare.dataUrl, 'http://127.0.0.1:9001');
    const full = loadConfig({ ...keys, ALPACA_STREAM_URL: 'wss://proxy.example/alpaca/v2/sip' }).marketProvider;
    assert.ok(full.kind === 'alpaca');
    assert.equal(full.streamUrl, 'wss://proxy.example/alpaca/v2/sip');
  });

  test('keys are required with alpaca, and a bad key value is never echoed', () => {
    assert.deepEqual(Object.keys(problemsOf({ MARKET_PROVIDER: 'alpaca' })).sort(), ['ALPACA_KEY_ID', 'ALPACA_SECRET_KEY']);
    const problems = problemsOf({ MARKET_PROVIDER: 'alpaca', ALPACA_KEY_ID: 'k', ALPACA_SECRET_KEY: 'has a space secret' });
    assert.ok(problems.ALPACA_SECRET_KEY);
    assert.doesNotMatch(problems.ALPACA_SECRET_KEY, /space secret/);
  });

  test('bad values fail fast, naming the variable', () => {
    const problems = problemsOf({
      MARKET_PROVIDER: 'bloomberg',
      ALPACA_FEED: 'otc',
      ALPACA_DATA_URL: 'ftp://x',
      ALPACA_STREAM_URL: 'http://x',
      ALPACA_BACKFILL_DAYS: '5',
      ALPACA_SYMBOLS: 'aapl',
    });
    assert.deepEqual(Object.keys(problems).sort(), [
      'ALPACA_BACKFILL_DAYS',
      'ALPACA_DATA_URL',
      'ALPACA_FEED',
      'ALPACA_STREAM_URL',
      'ALPACA_SYMBOLS',
      'MARKET_PROVIDER',
    ]);
  });

  test('alpaca and a replay of stored bars exclude each other', () => {
    const problems = problemsOf({
      MARKET_PROVIDER: 'alpaca',
      ALPACA_KEY_ID: 'k',
      ALPACA_SECRET_KEY: 's',
      MARKET_REPLAY_FROM: '2020-01-02',
    });
    assert.match(problems.MARKET_REPLAY_FROM!, /cannot be combined/);
  });
});
