import { configFromEnvironment, type Config } from './config/index.js';
import { createLogger, type Logger } from './infra/logger/logger.js';

/**
 * How far apart two copies of one signal may arrive: npm forwards SIGTERM/SIGINT to its child as soon as
 * it gets them (@npmcli/run-script's signal manager), while an operator's deliberate second Ctrl-C comes later.
 */
export const DUPLICATE_SIGNAL_MS = 1_000;

/** What the process entry runs and stops: startGateway and its RunningGateway, seen from here. */
export type StartGateway = (config: Config, logger: Logger) => Promise<{ stop(): Promise<void> }>;

/**
 * Process entry (`npm start` runs src/main.ts, which calls this): config → logger → gateway;
 * SIGTERM/SIGINT drain and exit 0, or 1 if draining fails. The gateway is a parameter so this file
 * needs nothing from main.ts.
 */
export async function runProcess(startGateway: StartGateway): Promise<void> {
  const config = configFromEnvironment();
  if (!config) process.exit(1);
  const logger = createLogger(config.log);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let gateway: { stop(): Promise<void> };
  try {
    gateway = await startGateway(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
    process.exitCode = 1;
    logger.flush();
    // Let the log reach its destination, then make sure no leftover handle keeps the process alive.
    setTimeout(() => process.exit(1), 200).unref();
    return;
  }

  let signalled = false;
  let first: { signal: string; at: number } | undefined;
  let uncaught = false; // an uncaught exception happened: the exit code says so even after a clean stop
  const shutdown = (signal: string) => {
    if (signalled) {
      // An error thrown while shutting down must not cut the shutdown short: the history writer's
      // final flush (or spill) is still to come. Only a second signal from an operator means "now".
      if (signal === 'uncaughtException') return;
      // One signal sent to the process group (Ctrl-C in a terminal, `kill -- -PGID`) reaches this process
      // twice under `npm start`: directly, and again when npm forwards what it got to its child. That
      // copy is not an operator insisting, so the same signal within DUPLICATE_SIGNAL_MS is ignored.
      if (first && first.signal === signal && performance.now() - first.at < DUPLICATE_SIGNAL_MS) {
        logger.info({ signal }, 'the same signal again (npm forwards what the process group got): still draining');
        return;
      }
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    if (signal !== 'uncaughtException') first = { signal, at: performance.now() };
    logger.info({ signal }, 'shutting down: draining connections');
    const hardStop = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_000);
    hardStop.unref();
    gateway.stop().then(
      () => {
        logger.info('shutdown complete');
        logger.flush();
        process.exit(uncaught ? 1 : 0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Unhandled rejections arrive here too (origin 'unhandledRejection'), as Node raises them.
  process.on('uncaughtException', (error, origin) => {
    uncaught = true;
    logger.fatal(
      { err: error, origin, shuttingDown: signalled },
      signalled ? 'uncaught exception during shutdown; the shutdown goes on' : 'uncaught exception: shutting down',
    );
    shutdown('uncaughtException');
  });
}
