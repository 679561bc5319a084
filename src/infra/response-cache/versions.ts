import { familyOf, isWholeFamily, type InputName } from './inputs.js';

/** What changed: some inputs, or everything (a reconnect after which changes may have been missed). */
export type Change = { readonly inputs: readonly InputName[] } | { readonly all: true };

/** Where a change was observed: here (a write, a bar, an activation on this instance) or on another instance. */
export type ChangeOrigin = 'local' | 'remote';

/**
 * One instance's record of when each input of cached answers last changed, as positions in a single
 * sequence of changes. An answer may be stored only if none of the inputs it read changed between the
 * moment its execution started ({@link now}) and the moment it is stored ({@link unchangedSince}), so an
 * answer computed while an input changed is never stored under the input's new state.
 *
 * A write that takes time (an INSERT of history rows, an upsert of bars) is announced twice: when it
 * starts ({@link writing}) its inputs count as changing until it has finished, so no answer reading
 * them is stored or served meanwhile, and when it ends they change again. Without the first half, an
 * answer computed from the old rows just before the commit could be stored just after it.
 *
 * ```ts
 * const versions = new InputVersions();
 * const started = versions.now();
 * const answer = await execute();                  // reads bars:AAPL
 * if (versions.unchangedSince(['bars:AAPL'], started)) store(answer);
 * versions.changed(['bars:AAPL']);                 // a new bar: listeners evict what read it
 * ```
 *
 * Listeners run synchronously inside {@link changed}, {@link changedAll} and {@link writing}, before
 * they return: a change is reflected (entries evicted) before the code that made it goes on.
 */
export class InputVersions {
  #seq = 0;
  /** input → position of its last change (a keyed input, or `family:*` for "something in the family"). */
  readonly #changedAt = new Map<InputName, number>();
  /** family → position of its last whole-family change. */
  readonly #wholeFamilyAt = new Map<string, number>();
  #allAt = 0;
  /** input → writes of it in progress (keyed inputs, and `family:*` for any write in the family). */
  readonly #writing = new Map<InputName, number>();
  /** family → whole-family writes in progress. */
  readonly #wholeFamilyWriting = new Map<string, number>();
  readonly #listeners = new Set<(change: Change, origin: ChangeOrigin) => void>();

  /** The position of the latest change: capture it before an execution starts. */
  now(): number {
    return this.#seq;
  }

  /**
   * Whether none of `inputs` changed after position `since` and none is being written. The `*` of a
   * family is changed by any change in the family; any input is changed by a whole-family change.
   */
  unchangedSince(inputs: Iterable<InputName>, since: number): boolean {
    if (this.#allAt > since) return false;
    for (const input of inputs) {
      const family = familyOf(input);
      if ((this.#wholeFamilyAt.get(family) ?? 0) > since || (this.#wholeFamilyWriting.get(family) ?? 0) > 0) return false;
      const name = isWholeFamily(input) ? `${family}:*` : input;
      if ((this.#changedAt.get(name) ?? 0) > since || (this.#writing.get(name) ?? 0) > 0) return false;
    }
    return true;
  }

  /** Records that `inputs` changed now, and tells the listeners. */
  changed(inputs: readonly InputName[], origin: ChangeOrigin = 'local'): void {
    if (inputs.length === 0) return;
    const at = ++this.#seq;
    for (const input of inputs) this.#mark(input, at);
    this.#tell({ inputs }, origin);
  }

  /** Records that anything may have changed (changes were missed), and tells the listeners. */
  changedAll(origin: ChangeOrigin = 'local'): void {
    this.#allAt = ++this.#seq;
    this.#tell({ all: true }, origin);
  }

  /**
   * Runs `write`, with `inputs` changing from before it starts until after it has settled (resolved or
   * rejected: a failed write may still have committed). Resolves or rejects as `write` does.
   */
  async writing<T>(inputs: readonly InputName[], write: () => Promise<T>): Promise<T> {
    if (inputs.length === 0) return write();
    for (const input of inputs) this.#count(input, +1);
    // Changed at the start too: what was stored before the write is evicted now, not after it.
    this.changed(inputs);
    try {
      return await write();
    } finally {
      for (const input of inputs) this.#count(input, -1);
      this.changed(inputs);
    }
  }

  /** Calls `listener` on every change, with where it was observed. */
  onChange(listener: (change: Change, origin: ChangeOrigin) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #mark(input: InputName, at: number): void {
    const family = familyOf(input);
    if (isWholeFamily(input)) this.#wholeFamilyAt.set(family, at);
    else this.#changedAt.set(input, at);
    // Whatever depends on the whole family depends on this input too.
    this.#changedAt.set(`${family}:*`, at);
  }

  #count(input: InputName, delta: number): void {
    const family = familyOf(input);
    const bump = (map: Map<string, number>, key: string) => {
      const next = (map.get(key) ?? 0) + delta;
      if (next > 0) map.set(key, next);
      else map.delete(key);
    };
    if (isWholeFamily(input)) bump(this.#wholeFamilyWriting, family);
    else bump(this.#writing, input);
    bump(this.#writing, `${family}:*`);
  }

  #tell(change: Change, origin: ChangeOrigin): void {
    for (const listener of this.#listeners) listener(change, origin);
  }
}
