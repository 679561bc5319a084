/**
 * JSON that keeps Dates as Dates across Redis, so an event or a cached value looks the same whichever
 * instance wrote it. (A plain object whose only key is `$date` would be read back as a Date; nothing
 * we send has that shape.) JSON.stringify calls Date#toJSON before a replacer sees the value, hence
 * reading the raw value from `this`.
 */
export const dateSafeJson = {
  stringify(message: unknown): string {
    return JSON.stringify(message, function (this: Record<string, unknown>, key, value) {
      const raw = this[key];
      return raw instanceof Date ? { $date: raw.toISOString() } : value;
    });
  },
  parse(message: string): unknown {
    return JSON.parse(message, (_key, value: unknown) => {
      if (value !== null && typeof value === 'object' && '$date' in value && Object.keys(value).length === 1) {
        return new Date((value as { $date: string }).$date);
      }
      return value;
    });
  },
};
