import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { UnitType } from '../vault/rules.js'
import type { PythonTypedValue } from './python-typed.js'

// The engine's side of the Python bridge (python/bridge.py, which documents the
// protocol): one long-lived interpreter per script worker, fed a step's units in
// batches. Frames are a 4-byte big-endian length and UTF-8 JSON, on the child's
// stdin and stdout; its stderr (a script's prints) is passed on to ours, its tail
// kept for the error when the process dies.

export interface BridgeHello {
  python: string // '3.11.7'
  executable: string
  yaml: string
  libyaml: boolean
  atomicAgents: string | null // where the installed atomic_agents package is, null when the bridge's stand-in is used
}

export interface BridgeScript {
  step: number
  path: string // absolute
  file: string // vault-relative, for messages
  from: number
  to: number
}

export interface BridgeLoadError {
  step: number
  file: string
  kind: 'syntax' | 'import' | 'invalid'
  message: string
  line: number | null
  traceback: string | null
  problems: string[]
}

// The front matter as its YAML text, without the --- lines ('' when none), or typed by
// the engine as PyYAML would type it (./python-typed.ts).
export type BridgeUnit = {
  id: string // the unit_id scripts see: the unit's absolute path
  type: UnitType
} & ({ fm: string } | { meta: Array<[string, PythonTypedValue]> })

export interface BridgeFailure {
  phase: 'parse' | 'applies_to' | 'migrate'
  type: string // the exception's class name
  message: string // the exception's last line, e.g. "KeyError: 'name'"
  line: number | null // in the script (for parse: in the front matter)
  column?: number
  traceback: string
  memory: boolean
}

export type BridgeOutcome =
  | { applies: false }
  | { applies: true; returned: boolean; changes: string[]; wrote: boolean; removed: string[]; set: Array<[string, unknown]> }
  | { error: BridgeFailure }
  | { invalid: { key: string; path: string; what: string } }

// The interpreter stopped (exit, signal, or a broken frame): the batch cannot finish.
export class BridgeDied extends Error {
  constructor(
    readonly detail: string,
    readonly stderrTail: string,
  ) {
    super(detail)
  }
}

// Where bridge.py is: next to this module (dist/migrations/python/ after the build
// copied it there, src/migrations/python/ under tsx or vitest).
export function bridgeScriptPath(): string {
  const p = fileURLToPath(new URL('./python/bridge.py', import.meta.url))
  if (existsSync(p)) return p
  return fileURLToPath(new URL('../../src/migrations/python/bridge.py', import.meta.url))
}

const STDERR_TAIL = 4096

type Waiter = {
  onFrame: (frame: Record<string, unknown>) => boolean
  onHead?: (() => void) | undefined
  resolve: () => void
  reject: (err: BridgeDied) => void
}

export class PythonBridge {
  readonly hello: BridgeHello
  readonly #child: ChildProcess
  #buffer: Buffer = Buffer.alloc(0)
  // Requests sent and not yet answered, in order: the bridge answers them one after the
  // other, so a caller may send the next batch before the previous one is answered.
  #waiters: Waiter[] = []
  #dead: BridgeDied | null = null
  #stderr = ''

  private constructor(child: ChildProcess, hello: BridgeHello) {
    this.#child = child
    this.hello = hello
  }

  // Starts the interpreter and waits for its hello; rejects with BridgeDied when it
  // cannot start (ENOENT) or exits first (no PyYAML: exit 3).
  static start({ python, memoryMb = 0, forwardStderr = true }: { python: string; memoryMb?: number; forwardStderr?: boolean }): Promise<PythonBridge> {
    const child = spawn(python, ['-B', bridgeScriptPath(), '--memory-mb', String(memoryMb)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    })
    return new Promise((resolve, reject) => {
      let bridge: PythonBridge | null = null
      let pending: Buffer = Buffer.alloc(0)
      let stderr = ''
      const died = (detail: string): void => {
        const err = new BridgeDied(detail, stderr)
        if (bridge) bridge.#die(err)
        else reject(err)
      }
      child.stderr?.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8')
        stderr = (stderr + text).slice(-STDERR_TAIL)
        if (bridge) bridge.#stderr = stderr
        if (forwardStderr) process.stderr.write(chunk)
      })
      child.stdout?.on('data', (chunk: Buffer) => {
        if (bridge) return bridge.#receive(chunk)
        pending = Buffer.concat([pending, chunk])
        if (pending.length < 4) return
        const n = pending.readUInt32BE(0)
        if (pending.length < 4 + n) return
        let hello: Record<string, unknown>
        try {
          hello = JSON.parse(pending.subarray(4, 4 + n).toString('utf8')) as Record<string, unknown>
        } catch {
          return died('the bridge answered with a malformed frame')
        }
        if (hello.op !== 'hello') return died(`the bridge answered ${String(hello.op)} instead of hello`)
        bridge = new PythonBridge(child, {
          python: String(hello.python),
          executable: String(hello.executable),
          yaml: String(hello.yaml),
          libyaml: hello.libyaml === true,
          atomicAgents: typeof hello.atomic_agents === 'string' ? hello.atomic_agents : null,
        })
        bridge.#stderr = stderr
        const rest = pending.subarray(4 + n)
        if (rest.length > 0) bridge.#receive(rest)
        resolve(bridge)
      })
      child.on('error', (err: NodeJS.ErrnoException) =>
        died(err.code === 'ENOENT' ? `${python} was not found` : `${python} could not be started: ${err.message}`),
      )
      child.on('close', (code, signal) => died(signal ? `the Python process was killed by ${signal}` : `the Python process exited with code ${code}`))
      // A write to a dead child must not throw out of the event loop: the exit handler reports it.
      child.stdin?.on('error', () => undefined)
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  // Loads the scripts into the interpreter; the failures, one per script that did not load.
  async load(scripts: readonly BridgeScript[]): Promise<BridgeLoadError[]> {
    let errors: BridgeLoadError[] = []
    await this.#request({ op: 'load', scripts }, (frame) => {
      if (frame.op !== 'loaded') throw new BridgeDied(`the bridge answered ${String(frame.op)} to load`, this.#stderr)
      errors = Array.isArray(frame.errors) ? (frame.errors as BridgeLoadError[]) : []
      return true
    })
    return errors
  }

  // One step over a batch of units: the outcome of each, in order. onUnit(i) is called
  // when unit i starts (as far as the engine can tell: when unit i - 1 has answered).
  // Several runs may be in flight; they are answered in the order they were sent.
  async run(step: number, dryRun: boolean, units: readonly BridgeUnit[], onUnit?: (i: number) => void): Promise<BridgeOutcome[]> {
    const out: BridgeOutcome[] = []
    if (units.length === 0) return out
    await this.#request(
      { op: 'run', step, dry_run: dryRun, units },
      (frame) => {
        if (frame.op !== 'unit' || frame.i !== out.length)
          throw new BridgeDied(`the bridge answered out of order (${String(frame.op)} ${String(frame.i)} for unit ${out.length})`, this.#stderr)
        out.push(frame as unknown as BridgeOutcome)
        if (out.length < units.length) onUnit?.(out.length)
        return out.length === units.length
      },
      onUnit ? () => onUnit(0) : undefined,
    )
    return out
  }

  // The installed atomic-agents' own validators over a batch of units (bridge.py's
  // `validate`): per unit, in order, null when it passes, else the validator's message.
  async validate(units: readonly BridgeUnit[]): Promise<Array<string | null>> {
    let results: Array<string | null> = []
    if (units.length === 0) return results
    await this.#request({ op: 'validate', units }, (frame) => {
      const got = frame.results
      if (frame.op !== 'validated' || !Array.isArray(got) || got.length !== units.length || !got.every((r) => r === null || typeof r === 'string'))
        throw new BridgeDied(`the bridge answered ${String(frame.op)} to validate`, this.#stderr)
      results = got as Array<string | null>
      return true
    })
    return results
  }

  // Ends the interpreter: closing its input makes it exit; a kill follows if it does not.
  close(): void {
    if (this.#dead) return
    this.#dead = new BridgeDied('the bridge was closed', this.#stderr)
    this.#child.stdin?.end()
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000)
    timer.unref()
    this.#child.once('exit', () => clearTimeout(timer))
  }

  // Stops the interpreter at once (for tests of a bridge that dies mid-batch).
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child.kill(signal)
  }

  // onHead: called when the bridge starts on this request (the ones before it answered).
  #request(message: Record<string, unknown>, onFrame: (frame: Record<string, unknown>) => boolean, onHead?: () => void): Promise<void> {
    if (this.#dead) return Promise.reject(this.#dead)
    return new Promise((resolve, reject) => {
      this.#waiters.push({ onFrame, onHead, resolve, reject })
      if (this.#waiters.length === 1) onHead?.()
      const body = Buffer.from(JSON.stringify(message), 'utf8')
      const head = Buffer.alloc(4)
      head.writeUInt32BE(body.length, 0)
      this.#child.stdin?.write(Buffer.concat([head, body]))
    })
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    let at = 0
    while (this.#buffer.length - at >= 4) {
      const n = this.#buffer.readUInt32BE(at)
      if (this.#buffer.length - at - 4 < n) break
      const body = this.#buffer.subarray(at + 4, at + 4 + n)
      at += 4 + n
      const waiter = this.#waiters[0]
      if (!waiter) {
        this.#die(new BridgeDied('the bridge sent a frame nobody asked for', this.#stderr))
        return
      }
      try {
        const frame = JSON.parse(body.toString('utf8')) as Record<string, unknown>
        if (waiter.onFrame(frame)) {
          this.#waiters.shift()
          waiter.resolve()
          this.#waiters[0]?.onHead?.()
        }
      } catch (err) {
        this.#die(err instanceof BridgeDied ? err : new BridgeDied('the bridge sent a malformed frame', this.#stderr))
        return
      }
    }
    this.#buffer = at === this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(at)
  }

  #die(err: BridgeDied): void {
    if (this.#dead && this.#dead.message !== 'the bridge was closed') return
    const first = !this.#dead
    this.#dead = err
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.reject(err)
    if (first) this.#child.kill('SIGKILL')
  }
}
