// What a sandbox worker is doing, as it publishes it in slot 0 of its shared progress
// counters (sandbox-worker.ts) for the parent's watchdog (sandbox.ts).
export const PHASE = { load: 0, apply: 1, idle: 2, validate: 3, read: 4 } as const
