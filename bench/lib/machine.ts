import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { projectRoot } from './paths.js';

/** What a figure was measured on: without it a number cannot be compared with another run's. */
export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly totalMemoryBytes: number;
  readonly platform: string;
  /**
   * 1, 5 and 15-minute load averages when the run started. On a shared machine other people's tests
   * compete for the same cores; a load near the core count means absolute figures are depressed (the
   * ratios suffer less: each baseline is measured in the same run, minutes from its figure).
   */
  readonly loadAverageAtStart: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    totalMemoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/**
 * `git rev-parse --short HEAD`, plus `-dirty` when the working tree differs from it: tracked changes
 * or untracked files, since either can change what was measured. Our own output directory does not
 * count (the run writes there). Read-only git commands only.
 */
export function gitCommit(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    // --no-optional-locks: status would otherwise refresh .git/index, a write other engineers' git may be racing.
    const changes = git('--no-optional-locks', 'status', '--porcelain')
      .split('\n')
      .filter((line) => line.trim() && !line.slice(3).startsWith('bench/results/'));
    return changes.length ? `${commit}-dirty` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}
