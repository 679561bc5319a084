/**
 * Mulberry32: a small, fast, well-mixed, seedable 32-bit PRNG (public domain). Reproducible on every
 * platform, which is what its users need (the synthetic market, Shapley permutations, bootstrap
 * blocks); not for cryptography.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
