import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import type { MigrateResult } from '../../commands/migrate/migrate.js'
import { diffNeedsStore, withDiffContents } from '../../diff/contents.js'
import { writeReportHtml } from '../../diff/report-html.js'
import { sortDiffFiles } from '../../diff/unified.js'
import { AasError } from '../../errors.js'
import { openStore } from '../../git/open-store.js'
import { hashBlob } from '../../transaction/blob-hash.js'
import { ENGINE_VERSION } from '../../version.js'

// What a report shows: a dry run's result, or a recorded run read from the store.
export type ReportRun = Pick<
  MigrateResult,
  'agentsRoot' | 'runId' | 'dryRun' | 'from' | 'target' | 'snapshot' | 'result' | 'units' | 'validation' | 'diff' | 'patterns'
> & {
  scripts: string[] // vault-relative script files
  scriptBlobs?: Array<{ file: string; blob: string }> | null // as the run recorded them; else hashed from the files now
  validationSummary?: string | null // a recorded run's Aas-Validation ('ok', '<n> failed')
}

export function reportRunOf(r: MigrateResult): ReportRun {
  return { ...r, scripts: r.steps.map((s) => s.file) }
}

// `--report FILE.html`: the review report, written to a temp file beside FILE and renamed
// onto it, so FILE is either the old one or the whole new one.
export async function writeReport(r: ReportRun, file: string, now: Date = new Date()): Promise<{ file: string; files: number; bytes: number }> {
  const target = path.resolve(file)
  const scripts =
    r.scriptBlobs ?? (await Promise.all(r.scripts.map(async (f) => ({ file: f, blob: await readFile(path.join(r.agentsRoot, f)).then(hashBlob, () => null) }))))
  const header = {
    vault: r.agentsRoot,
    runId: r.runId,
    dryRun: r.dryRun,
    from: r.from,
    target: r.target,
    scripts,
    snapshot: r.snapshot,
    result: r.result,
    units: r.units,
    validation: r.validation,
    validationSummary: r.validationSummary ?? null,
    generatedAt: now.toISOString(),
    engineVersion: ENGINE_VERSION,
  }
  const files = sortDiffFiles(r.diff)
  const chunks = diffNeedsStore(files) ? withDiffContents(await openStore({ agentsRoot: r.agentsRoot, create: false }), files) : [files]
  const temp = `${target}.${process.pid}.tmp`
  const out = createWriteStream(temp)
  let bytes = 0
  const write = (text: string): Promise<void> | undefined => {
    bytes += Buffer.byteLength(text)
    return out.write(text) ? undefined : new Promise((resolve) => out.once('drain', () => resolve()))
  }
  const opened = new Promise<void>((resolve, reject) => (out.once('open', () => resolve()), out.once('error', reject)))
  try {
    await opened
    const { files: n } = await writeReportHtml(header, r.patterns, chunks, write)
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    await rename(temp, target)
    return { file: target, files: n, bytes }
  } catch (err) {
    out.destroy()
    await rm(temp, { force: true })
    throw new AasError('IO_FAILED', `Cannot write the report ${target}: ${(err as Error).message}`, {
      hint: 'Pass --report a path in a folder that exists and that you can write to.',
      data: { file: target },
      cause: err,
    })
  }
}

// `--open`: the platform's opener, only where a browser can show it (macOS, Windows, or a
// DISPLAY / WAYLAND_DISPLAY); else null, and the caller says where the file is.
export function openReport(file: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string | null {
  const command = platform === 'darwin' ? 'open' : platform === 'win32' ? 'explorer' : env.DISPLAY || env.WAYLAND_DISPLAY ? 'xdg-open' : null
  if (command === null) return null
  const child = spawn(command, [file], { detached: true, stdio: 'ignore', env })
  child.on('error', () => undefined)
  child.unref()
  return command
}
