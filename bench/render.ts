import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'

// Time to first render of the review report (--dry-run --report FILE.html) in Debian's
// chromium driven by playwright-core, as the browser test drives it: --no-sandbox, every
// request but the report file itself refused.

// The browser to use: AAS_CHROMIUM, else `chromium` on PATH; else why there is none.
export function findChromium(): { path: string } | { missing: string } {
  const set = process.env.AAS_CHROMIUM
  if (set) return existsSync(set) ? { path: set } : { missing: `AAS_CHROMIUM=${set} does not exist` }
  const found = execFileSync('sh', ['-c', 'command -v chromium || true'], { encoding: 'utf8' }).trim()
  return found ? { path: found } : { missing: 'no chromium on PATH and AAS_CHROMIUM is not set (Debian: apt-get install chromium)' }
}

// Milliseconds from the start of the navigation to the report's unit list rendered (the
// page sets body[data-ready] once its first units are listed), in a freshly launched
// browser (its launch is not timed).
export async function firstRenderMs(executablePath: string, file: string): Promise<number> {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    await context.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()))
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(String(e)))
    const started = performance.now()
    await page.goto(pathToFileURL(file).href, { waitUntil: 'commit', timeout: 300_000 })
    await page.waitForSelector('body[data-ready="1"] #units li', { timeout: 300_000 })
    const ms = performance.now() - started
    if (errors.length > 0) throw new Error(`the report raised: ${errors[0]}`)
    return ms
  } finally {
    await browser.close()
  }
}
