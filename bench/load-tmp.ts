import autocannon from 'autocannon';
import { BENCH_AUTHORIZATION } from '/work/wt-respcache/bench/lib/auth.js';
import { predictionsRequest } from '/work/wt-respcache/bench/lib/workload.js';
import { benchSymbols } from '/work/wt-respcache/bench/lib/postgres.js';
const url = process.argv[2]!;
const seconds = Number(process.argv[3] ?? 5);
const req = predictionsRequest(benchSymbols(60).slice(0, 50));
const r = await autocannon({
  url: url + '/graphql',
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: BENCH_AUTHORIZATION },
  body: req.body,
  connections: 50,
  duration: seconds,
});
console.log(
  `${(r['2xx'] / r.duration).toFixed(0)} req/s, p50 ${r.latency.p50} p99 ${r.latency.p99}, non2xx ${r.non2xx}, bytes/resp ${(r.throughput.total / Math.max(1, r['2xx'])).toFixed(0)}`,
);
