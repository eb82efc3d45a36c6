/** Command-line options and the runtime, as every benchmark reads them. */

/** `--name=value` from an argument list. */
export function option(args: readonly string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

export function numberOption(args: readonly string[], name: string, fallback: number): number {
  const text = option(args, name);
  if (text === undefined) return fallback;
  const value = Number(text.replace(/_/g, ""));
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}=${text}: not a number`);
  return value;
}

export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
