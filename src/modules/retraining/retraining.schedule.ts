import { Cron } from 'croner';
import type { Logger } from '../../infra/logger/logger.js';

/**
 * RETRAIN_SCHEDULE on croner (cron syntax, time zones and daylight-saving rules are the library's job).
 * Each instance runs the same schedule; which of them trains a tick is decided by the claim in the
 * database, so every instance must name the tick the same way: the scheduled time, not the moment its
 * timer happened to fire (a busy event loop fires late). croner hands the callback the latter, so the
 * tick is the latest scheduled time at or before it.
 *
 * A tick that fires while this instance's previous one still runs is not started (croner's `protect`):
 * `onBusy` is told instead. An error thrown by `onTick` is logged, never thrown into the timer.
 */
export interface Schedule {
  /** When the next tick fires (null: never again). */
  nextRun(): Date | null;
  /** Stops firing; a tick already running goes on (stop it through its own owner). */
  stop(): void;
}

export interface ScheduleOptions {
  readonly pattern: string;
  readonly timezone: string;
  readonly onTick: (scheduledFor: Date) => Promise<unknown>;
  readonly onBusy: (scheduledFor: Date) => void;
  readonly logger: Logger;
}

export function startSchedule({ pattern, timezone, onTick, onBusy, logger }: ScheduleOptions): Schedule {
  const tickOf = (job: Cron, fired: Date) => job.previousRuns(1, new Date(fired.getTime() + 1))[0] ?? fired;
  const job = new Cron(
    pattern,
    {
      timezone,
      // Let the process exit: the lifecycle stops the schedule, the timer must not hold it open.
      unref: true,
      protect: (self) => onBusy(tickOf(self, new Date())),
      catch: (error) => logger.error({ err: error }, 'scheduled retraining tick failed'),
    },
    async (self: Cron) => {
      await onTick(tickOf(self, new Date()));
    },
  );
  return {
    nextRun: () => job.nextRun(),
    stop: () => job.stop(),
  };
}
