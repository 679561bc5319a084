import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { timescaleTests } from './services.js';

/**
 * A throw-away PostgreSQL server of a test's own, which the test may stop and start at will. The rule on
 * shared machines: a test stops and starts only services it started itself, never the machine's
 * PostgreSQL on 5432.
 *
 * - the binaries are the distribution's server binaries, `/usr/lib/postgresql/<major>/bin/{initdb,pg_ctl}`
 *   (the highest major that has both); none → {@link findPostgres} says why, and the suite skips;
 * - `initdb` refuses to run as root, and CI / dev containers here run as root, so when uid is 0 both
 *   binaries run as the `postgres` OS user through `runuser -u postgres --` and the temp directory (data
 *   dir, Unix socket dir, server log) is chowned to that user first;
 * - the server listens on 127.0.0.1 on a port the OS handed out, its Unix socket goes into the temp dir,
 *   `fsync=off` and `initdb --no-sync` because the data is thrown away; `destroy()` stops it and deletes
 *   the temp dir.
 */

const execFileAsync = promisify(execFile);

export interface PostgresBinaries {
  readonly initdb: string;
  readonly pgCtl: string;
  /** Prefix that runs a binary as the server's OS user (empty when we are not root). */
  readonly asUser: readonly string[];
  /** uid/gid to own the temp dir, when running as root. */
  readonly owner: { uid: number; gid: number } | undefined;
}

/** The server binaries and how to run them here, or why this machine cannot. */
export function findPostgres(): PostgresBinaries | string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const major = majors.find((m) => existsSync(path.join(root, m, 'bin/initdb')) && existsSync(path.join(root, m, 'bin/pg_ctl')));
  if (!major) return `no PostgreSQL server binaries (${root}/*/bin/{initdb,pg_ctl}) on this machine`;
  const bin = path.join(root, major, 'bin');
  const binaries = { initdb: path.join(bin, 'initdb'), pgCtl: path.join(bin, 'pg_ctl') };
  if (process.getuid?.() !== 0) return { ...binaries, asUser: [], owner: undefined };
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));
  if (!runuser) return 'running as root (initdb refuses root) and no runuser binary to run it as the postgres user';
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { ...binaries, asUser: [runuser, '-u', 'postgres', '--'], owner: { uid, gid } };
  } catch {
    return 'running as root (initdb refuses root) and there is no postgres OS user to run it as';
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A PostgreSQL server of our own, in a temp dir, that this test may stop and start at will. */
export class PrivatePostgres {
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  port = 0;
  running = false;

  constructor(
    private readonly binaries: PostgresBinaries,
    /** The database `url` and `query` use; create it with {@link createDatabase}. */
    readonly database = 'sibyl_fault',
    /**
     * Preload TimescaleDB and create the extension in every database made by {@link createDatabase}:
     * on by default on the suite's TimescaleDB leg (SIBYL_TEST_TIMESCALE=1), so the fault tests run on
     * hypertables there too.
     */
    readonly timescale = timescaleTests,
  ) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'sibyl-pgprivate-'));
    if (binaries.owner) chownSync(this.dir, binaries.owner.uid, binaries.owner.gid);
    this.dataDir = path.join(this.dir, 'data');
    this.logFile = path.join(this.dir, 'postgres.log');
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${this.database}`;
  }

  async init(): Promise<void> {
    await this.#run(this.binaries.initdb, ['-D', this.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    this.port = await freePort();
  }

  /** Starts on `this.port` and waits until it accepts connections (`-w`). */
  async start(): Promise<void> {
    const timescale = this.timescale ? ' -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off' : '';
    const options = `-p ${this.port} -k "${this.dir}" -c listen_addresses=127.0.0.1 -c fsync=off${timescale}`;
    // -l: the postmaster must not inherit our stdout pipe, or execFile would wait for it to exit.
    await this.#run(this.binaries.pgCtl, ['-D', this.dataDir, '-l', this.logFile, '-o', options, '-w', '-t', '30', 'start']);
    this.running = true;
  }

  /** `-m fast`: open connections are terminated, like a server being taken down for maintenance. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.#run(this.binaries.pgCtl, ['-D', this.dataDir, '-m', mode, '-w', '-t', '30', 'stop']);
    this.running = false;
  }

  /** A new, empty database (with the timescaledb extension when {@link timescale}). */
  async createDatabase(name = this.database): Promise<void> {
    await this.query(`create database ${name}`, 'postgres');
    if (this.timescale) await this.query('create extension timescaledb', name);
  }

  async query<R extends pg.QueryResultRow>(text: string, database = this.database): Promise<R[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database });
    await client.connect();
    try {
      return (await client.query<R>(text)).rows;
    } finally {
      await client.end();
    }
  }

  serverLog(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '(no server log)';
    }
  }

  async destroy(): Promise<void> {
    if (this.running || existsSync(path.join(this.dataDir, 'postmaster.pid'))) await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #run(binary: string, args: readonly string[]): Promise<void> {
    const [command, ...prefix] = [...this.binaries.asUser, binary];
    try {
      await execFileAsync(command!, [...prefix, ...args], { timeout: 60_000 });
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw new Error(
        `${path.basename(binary)} ${args.join(' ')} failed: ${(error as Error).message}\n${stdout ?? ''}${stderr ?? ''}\n${this.serverLog()}`,
        {
          cause: error,
        },
      );
    }
  }
}
