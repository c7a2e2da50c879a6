import type { EngineEvent } from '../../commands/session.js'

// Progress lines on stderr for work that takes a while (README.md, "Command line",
// --no-progress): a phase that is still running after `delayMs` gets a live `\r` line
// with counts and rate, and a final line when it ends. Quick phases print nothing, so
// short runs stay quiet.

export interface ProgressOptions {
  write: (text: string) => void
  delayMs?: number // show a phase only once it has run this long (default 1000)
  redrawMs?: number // at most one redraw per interval (default 100)
  now?: () => number
}

export interface ProgressRenderer {
  onEvent(event: EngineEvent): void
  // The enumeration of units, which reports a running count only.
  enumerate(done: number): void
  // End the current phase (call when the command ends, before its output).
  finish(): void
}

const UNITS: Record<string, string> = {
  enumerate: 'units',
  snapshot: 'files',
  apply: 'units',
  validate: 'units',
  'fast-forward': 'files',
  rollback: 'files',
}

interface Phase {
  name: string
  total: number
  done: number
  started: number
  drawn: boolean
  lastDraw: number
}

function rate(done: number, ms: number): string {
  const perSecond = ms > 0 ? (done * 1000) / ms : done
  return `${Math.round(perSecond).toLocaleString('en-US')}/s`
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

export function makeProgress({ write, delayMs = 1000, redrawMs = 100, now = Date.now }: ProgressOptions): ProgressRenderer {
  let current: Phase | null = null
  let mark = now() // when the running phase began (the command start for the first one)

  const label = (p: Phase): string => {
    const unit = UNITS[p.name] ?? 'items'
    return p.total > 0 ? `${p.done}/${p.total} ${unit}` : `${p.done} ${unit}`
  }
  const draw = (p: Phase, t: number): void => {
    p.drawn = true
    p.lastDraw = t
    write(`\r\x1b[K${p.name}: ${label(p)} (${rate(p.done, t - p.started)})`)
  }
  const end = (): void => {
    const p = current
    current = null
    if (!p) return
    const t = now()
    mark = t
    if (!p.drawn && t - p.started < delayMs) return
    write(`\r\x1b[K${p.name}: ${label(p)} in ${seconds(t - p.started)} (${rate(p.done, t - p.started)})\n`)
  }
  const begin = (name: string, total: number): Phase => {
    end()
    current = { name, total, done: 0, started: mark, drawn: false, lastDraw: 0 }
    return current
  }
  const update = (name: string, done: number, total: number): void => {
    const p = current && current.name === name ? current : begin(name, total)
    p.done = done
    if (total > 0) p.total = total
    const t = now()
    if (t - p.started >= delayMs && (t - p.lastDraw >= redrawMs || (p.total > 0 && done >= p.total))) draw(p, t)
  }

  return {
    onEvent(e) {
      if (e.type === 'phase') {
        const p = begin(e.phase, e.total)
        // Phases without per-item events count as done when the next one begins.
        if (e.phase === 'apply' || e.phase === 'validate') p.done = e.total
      } else if (e.type === 'progress') {
        update(e.phase, e.done, e.total)
      } else if (e.type === 'snapshot' || e.type === 'recovered') {
        // The caller prints these announcements next: finish the line above them first.
        end()
      }
    },
    enumerate(done) {
      update('enumerate', done, 0)
    },
    finish() {
      end()
    },
  }
}

// A renderer that ignores everything (no TTY, --no-progress, --json).
export const silentProgress: ProgressRenderer = { onEvent: () => undefined, enumerate: () => undefined, finish: () => undefined }
