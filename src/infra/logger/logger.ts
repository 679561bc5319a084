import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object. Connection strings and credentials are
 * redacted at the source too (see config's redactUrl); this is the second net.
 */
const REDACT_PATHS = [
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'connectionParams',
  '*.connectionParams',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'databaseUrl',
  'redisUrl',
  // Market-data vendor keys (Alpaca's auth message and headers); the adapters never log them either.
  'secret',
  '*.secret',
  'secretKey',
  '*.secretKey',
  'keyId',
  '*.keyId',
  'headers["APCA-API-SECRET-KEY"]',
  '*.headers["APCA-API-SECRET-KEY"]',
];

export interface LoggerOptions {
  level: string;
  format: 'pretty' | 'json';
  /** Where JSON lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'sibyl' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (options.format === 'pretty') {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' } },
    });
  }
  return pino(base);
}

/**
 * The logger for lines whose fields are fixed and hold no secret (the request log line: id, method, URL,
 * status, duration, operation, role, error codes): the same output without the redaction pass, which
 * walks every wildcard path over every line and was most of what a request's log line cost
 * (docs/decisions/response-cache.md). Never pass it an object from elsewhere (a request, an error).
 */
export function fixedFieldsLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [] } });
}
