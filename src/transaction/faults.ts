// Named kill points for crash tests. AAS_FAULT=<name>[:<n>][,<name>[:<n>]…] makes the
// process SIGKILL itself at the n-th call (default: the first) of faultPoint(<name>).
// Read once at load: when AAS_FAULT is unset, faultPoint is a single null check.
//
// Points the engine is expected to declare (names are free-form strings):
//   after-journal          journal durable, no live write yet
//   mid-fast-forward:<n>   before the live write of the n-th path of a fast-forward's journal
//   before-journal-delete  every live write done and durable, journal still present
//   mid-rollback:<n>       before the live write of the n-th path of a rollback's journal
// (<n> is the journal's order; a big write phase's helper thread writes part of the
// paths alongside the main thread, so the paths before n need not all be written yet.)
//   mid-recovery:<n>       before the n-th live file write of a recovery
//   mid-claim:<n>          n-th path of a write phase renamed aside to its claim, not yet checked
//   mid-rewrite:<n>        n-th path's claim, at its rewrite name, holds the new bytes over the
//                          old ones, not yet truncated (claim-write.ts)
//   mid-link:<n>           n-th path's new bytes linked in place, its claim (or rewrite name)
//                          not yet removed

export interface FaultSpec {
  name: string
  at: number // 1-based call number
}

// Parse an AAS_FAULT value; malformed parts are ignored rather than thrown,
// because this runs at module load of production code.
export function parseFaultSpec(value: string | undefined): FaultSpec[] {
  if (!value) return []
  const specs: FaultSpec[] = []
  for (const part of value.split(',')) {
    const match = /^\s*([A-Za-z0-9_.-]+)(?::(\d+))?\s*$/.exec(part)
    if (!match?.[1]) continue
    const at = match[2] === undefined ? 1 : Number(match[2])
    if (at >= 1) specs.push({ name: match[1], at })
  }
  return specs
}

const active: FaultSpec[] | null = (() => {
  const specs = parseFaultSpec(process.env.AAS_FAULT)
  return specs.length > 0 ? specs : null
})()
const calls = new Map<string, number>()

// Kill the process here when AAS_FAULT names this point. `counter` overrides the
// call count (for callers that already number their steps, e.g. the file index).
export function faultPoint(name: string, counter?: number): void {
  if (active === null) return
  let n = counter
  if (n === undefined) {
    n = (calls.get(name) ?? 0) + 1
    calls.set(name, n)
  }
  for (const spec of active) {
    if (spec.name === name && spec.at === n) process.kill(process.pid, 'SIGKILL')
  }
}

// True when any kill point is armed (lets an engine skip batching that would hide a point).
export function faultsArmed(): boolean {
  return active !== null
}
