/**
 * `reusePort` (SO_REUSEPORT): several processes listen on one port and the kernel spreads the
 * connections among them. Only Linux balances them; elsewhere the option binds but one socket
 * takes every connection, or it is ignored, so anyws refuses it there instead of pretending.
 */

/** Throws unless `platform` (`process.platform`, `Deno.build.os`) balances SO_REUSEPORT sockets. */
export function checkReusePortPlatform(platform: string): void {
  if (platform !== "linux") {
    throw new Error(
      `anyws: reusePort needs Linux, whose kernel balances connections among the sockets sharing a port (SO_REUSEPORT); this is ${platform}`,
    );
  }
}
