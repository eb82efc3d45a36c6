/** Options with defaults: one rule for every set of options the core resolves. */

/** `defaults` with each value `given` has (not undefined) in its place; only the keys of `defaults`. */
export function withDefaults<T extends object>(defaults: T, given: Partial<T>): T {
  const result = {} as T;
  for (const key of Object.keys(defaults) as (keyof T)[]) result[key] = given[key] ?? defaults[key];
  return result;
}
