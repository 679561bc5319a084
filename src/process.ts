import { configFromEnvironment, type Config } from './config/index.js';
import { createLogger, type Logger } from './infra/logger/logger.js';

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
  let uncaught = false; // an uncaught exception happened: the exit code says so even after a clean stop
  const shutdown = (signal: string) => {
    if (signalled) {
      // An error thrown while shutting down must not cut the shutdown short: the history writer's
      // final flush (or spill) is still to come. Only a second signal from an operator means "now".
      if (signal === 'uncaughtException') return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
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
