import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and says where the time went inside a window of it:
 * self time per function and per area (a package under node_modules, a file of ours, node's internals,
 * GC, idle), and inclusive time of the functions that matter. Samples outside the window (start-up,
 * warm-up, shutdown) are left out, so the figures are of the measured load only.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Microseconds of samples inside the window. */
  readonly totalUs: number;
  /** Self time by layer of the request's path (layerOf), every layer listed. */
  readonly byLayer: ReadonlyArray<{ name: string; us: number }>;
  readonly byArea: ReadonlyArray<{ name: string; us: number }>;
  readonly byFunction: ReadonlyArray<{ name: string; us: number }>;
  /** Time spent in a function or anything it called (each sample counted once per stack). */
  readonly inclusive: ReadonlyArray<{ name: string; us: number }>;
}

const SPECIAL = new Set(['(garbage collector)', '(idle)', '(program)', '(root)']);

/** Where a frame's code lives, short: `graphql`, `@apollo/server`, `src/server/apollo.ts`, `node:internal`. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return SPECIAL.has(functionName) ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const marker = ['/dist/src/', '/src/', '/bench/'].find((m) => url.includes(m));
  if (marker) return url.slice(url.indexOf(marker) + 1).replace(/^dist\//, '');
  return path.basename(url);
}

/** Layers of a request's path, in the order a request crosses them. */
export const LAYERS = [
  'HTTP: node, fastify, socket writes, security headers, CORS',
  'Apollo Server: request pipeline, plugins, JSON answer',
  'GraphQL execution: executor, resolvers glue, type-graphql, scalars',
  'admission and auth: cost, limits, JWT',
  'predictions: services, caches, DataLoaders, SQL',
  'request log and metrics',
  'garbage collection',
  'other (native, program, idle)',
] as const;

const LAYER_OF_AREA: ReadonlyArray<[RegExp, (typeof LAYERS)[number]]> = [
  [
    /^(node:internal|fastify|find-my-way|@fastify\/|helmet|secure-json-parse|content-type|light-my-request|avvio|src\/server\/security-headers)/,
    LAYERS[0],
  ],
  [/^(@apollo\/|@as-integrations\/|negotiator|whatwg-mimetype|src\/server\/(apollo|cache-control|errors|explorer))/, LAYERS[1]],
  [
    /^(graphql|graphql-jit|graphql-scalars|type-graphql|class-validator|reflect-metadata|generate-function|src\/schema\/|src\/server\/(compiled-execution|executor-gateway|response-meter))/,
    LAYERS[2],
  ],
  [/^(jose|src\/server\/(admission|cost|limits|inflight|once-per-operation)|src\/modules\/access\/)/, LAYERS[3]],
  [/^(dataloader|lru-cache|pg|pg-|kysely|postgres-|onnxruntime|@electric-sql\/|src\/(modules|domain|infra|context)\/)/, LAYERS[4]],
  [/^(pino|@pinojs\/|sonic-boom|fast-redact|prom-client|tdigest|bintrees|src\/server\/(observe|server))/, LAYERS[5]],
  [/^\(garbage collector\)$/, LAYERS[6]],
];
/** Native frames that are the socket's writes (the rest of `(native)` is left in `other`). */
const SOCKET_NATIVES = /^(writev|writeUtf8String|writeBuffer|utf8Write|writeLatin1String)$/;

export function layerOf(area: string, functionName: string): (typeof LAYERS)[number] {
  if (area === '(native)' && SOCKET_NATIVES.test(functionName)) return LAYERS[0];
  return LAYER_OF_AREA.find(([pattern]) => pattern.test(area))?.[1] ?? LAYERS[7];
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  if (!url) return functionName || '(anonymous)';
  return `${functionName || '(anonymous)'} ${areaOf(url, functionName)}:${lineNumber + 1}`;
}

/** `from`/`to`: microseconds on the monotonic clock the profile uses (process.hrtime in another process). */
export function summarizeProfile(file: string, window?: { from: number; to: number }, top = 40): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    // A sample's time is the gap to the next one (V8 attributes the interval that follows it).
    const us = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0;
    if (window && (t < window.from || t > window.to)) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + us);
    total += us;
  }

  const area = new Map<string, number>();
  const layer = new Map<string, number>(LAYERS.map((l) => [l, 0]));
  const fn = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { url, functionName } = node.callFrame;
    const a = areaOf(url, functionName);
    area.set(a, (area.get(a) ?? 0) + us);
    const l = layerOf(a, functionName);
    layer.set(l, layer.get(l)! + us);
    const name = frameName(node);
    fn.set(name, (fn.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = frameName(byId.get(at)!);
      if (seen.has(n)) continue;
      seen.add(n);
      inclusive.set(n, (inclusive.get(n) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, us }));
  return {
    totalUs: total,
    byLayer: [...layer].map(([name, us]) => ({ name, us })),
    byArea: sorted(area),
    byFunction: sorted(fn),
    inclusive: sorted(inclusive),
  };
}

/** The summary as text: share of the window's time, and µs per request when `requests` is given. */
export function formatSummary(summary: ProfileSummary, requests?: number): string {
  const line = ({ name, us }: { name: string; us: number }) => {
    const share = ((100 * us) / Math.max(1, summary.totalUs)).toFixed(1).padStart(5);
    const perRequest = requests ? `${(us / requests).toFixed(1).padStart(8)} µs/req` : '';
    return `${share}% ${perRequest}  ${name}`;
  };
  return [
    `${(summary.totalUs / 1e6).toFixed(2)} s of samples${requests ? `, ${requests} requests: ${(summary.totalUs / requests).toFixed(0)} µs of CPU per request` : ''}`,
    '',
    'self time by layer of the request path:',
    ...summary.byLayer.map(line),
    '',
    'self time by area:',
    ...summary.byArea.map(line),
    '',
    'self time by function:',
    ...summary.byFunction.map(line),
    '',
    'inclusive time (a function and what it called):',
    ...summary.inclusive.map(line),
  ].join('\n');
}
