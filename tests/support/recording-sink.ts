/** A backplane sink that records what a driver reports, for driver tests. */
import type { BackplaneSink, BackplaneStage } from "../../adapters/shared/backplane.ts";

export class RecordingSink implements BackplaneSink {
  readonly messages: { channel: string; envelope: Uint8Array }[] = [];
  readonly errors: { stage: BackplaneStage; error: unknown }[] = [];
  ups = 0;
  downs = 0;
  /** Called after each message, e.g. to resolve a wait. */
  onMessage: (() => void) | null = null;

  message(channel: string, envelope: Uint8Array): void {
    this.messages.push({ channel, envelope });
    this.onMessage?.();
  }
  error(stage: BackplaneStage, error: unknown): void {
    this.errors.push({ stage, error });
  }
  up(): void {
    this.ups++;
  }
  down(): void {
    this.downs++;
  }

  /** Resolves once `count` messages have arrived. */
  received(count: number, ms = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.messages.length} of ${count} envelopes arrived in ${ms} ms`)), ms);
      const check = () => {
        if (this.messages.length >= count) {
          clearTimeout(timer);
          this.onMessage = null;
          resolve();
        }
      };
      this.onMessage = check;
      check();
    });
  }
}
