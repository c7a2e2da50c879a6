import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { AasError } from '../errors.js'

export interface GitRun {
  stdout: Buffer
  stderr: string
  code: number
}

export interface RunGitOptions {
  env: NodeJS.ProcessEnv
  cwd?: string
  input?: Buffer | string
  allowFail?: boolean
}

// Run git with a buffered input and output; a non-zero exit is a STORE_FAILED error
// carrying the command and stderr, unless allowFail (the caller parses the result).
export function runGit(args: string[], { env, cwd, input, allowFail = false }: RunGitOptions): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e) => reject(storeFailed(args, String(e), e)))
    child.on('close', (code) => {
      const run = { stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), code: code ?? 1 }
      if (run.code !== 0 && !allowFail) reject(storeFailed(args, run.stderr))
      else resolve(run)
    })
    child.stdin.on('error', () => {}) // reported through the exit code
    child.stdin.end(input ?? '')
  })
}

export function storeFailed(args: string[], stderr: string, cause?: unknown): AasError {
  const cmd = args
    .filter((a, i) => a !== '-c' && args[i - 1] !== '-c')
    .slice(0, 3)
    .join(' ')
  return new AasError('STORE_FAILED', `git ${cmd} failed: ${stderr.trim() || 'no output'}`, {
    hint: 'Run `aas-migrate --doctor` to check the store; the vault itself was not changed.',
    data: { command: cmd, stderr: stderr.trim() },
    cause,
  })
}

// A long-running git child fed through stdin with backpressure (fast-import, cat-file --batch).
export function spawnGit(
  args: string[],
  { env, cwd }: { env: NodeJS.ProcessEnv; cwd?: string },
): {
  child: ChildProcessWithoutNullStreams
  write(chunk: Buffer | string): Promise<void>
  // Queues a chunk and waits only while much is queued; otherwise lets the event loop
  // run once, so what is queued reaches git while the caller reads more synchronously.
  send(chunk: Buffer | string): Promise<void>
  done: Promise<GitRun>
} {
  const child = spawn('git', args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] })
  const err: Buffer[] = []
  child.stderr.on('data', (b: Buffer) => err.push(b))
  let spawnError: Error | null = null
  let closed = false
  child.once('close', () => (closed = true))
  const done = new Promise<GitRun>((resolve, reject) => {
    child.on('error', (e) => {
      spawnError = e
      reject(storeFailed(args, String(e), e))
    })
    child.on('close', (code) => {
      const run = { stdout: Buffer.alloc(0), stderr: Buffer.concat(err).toString('utf8'), code: code ?? 1 }
      if (run.code !== 0) reject(storeFailed(args, run.stderr))
      else resolve(run)
    })
  })
  done.catch(() => {})
  child.stdin.on('error', () => {})
  const drained = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(storeFailed(args, Buffer.concat(err).toString('utf8')))
      const onDrain = (): void => {
        child.off('close', onClose)
        resolve()
      }
      const onClose = (): void => {
        child.stdin.off('drain', onDrain)
        reject(storeFailed(args, Buffer.concat(err).toString('utf8')))
      }
      child.stdin.once('drain', onDrain)
      child.once('close', onClose)
    })
  const write = async (chunk: Buffer | string): Promise<void> => {
    if (spawnError) throw spawnError
    if (!child.stdin.write(chunk)) await drained()
  }
  const send = async (chunk: Buffer | string): Promise<void> => {
    if (spawnError) throw spawnError
    child.stdin.write(chunk)
    if (child.stdin.writableLength > SEND_QUEUE_BYTES) await drained()
    else await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { child, write, send, done }
}

// How much send() lets queue up for a git child before it waits for git to catch up.
const SEND_QUEUE_BYTES = 8 << 20
