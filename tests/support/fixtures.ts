/** The test fixtures (tests/fixtures/), found and read the same way on every runtime. */

/** The TLS fixtures, found from the sources whether this runs from them or compiled in dist/. */
export const TLS_DIR = new URL("../fixtures/tls/", import.meta.url.replace("/dist/tests/", "/tests/"));

/** Reads a fixture file as text, on any runtime. */
export async function readFixture(name: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return readFile(new URL(name, TLS_DIR), "utf8");
}

/** The fixture certificate (for 127.0.0.1, ::1 and localhost), its key, and the CA that signed it. */
export async function readTlsFixtures(): Promise<{ cert: string; key: string; ca: string }> {
  const [cert, key, ca] = await Promise.all(["cert.pem", "key.pem", "ca.pem"].map(readFixture));
  return { cert, key, ca };
}
