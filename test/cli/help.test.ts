import { describe, expect, it } from 'vitest'
import { buildProgram, EXAMPLES } from '../../src/cli/program.js'
import { cli } from '../helpers/run-cli.js'

describe('--help', () => {
  it('shows an example for every flag', async () => {
    const r = await cli(['--help'])
    expect(r.code).toBe(0)
    const examples = r.stdout.slice(r.stdout.indexOf('Examples'))
    const exampleLines = examples.split('\n').filter((l) => l.trim().startsWith('aas-migrate '))
    const flags = buildProgram()
      .options.map((o) => o.long)
      .filter((f): f is string => f !== undefined && f !== '--help')
    expect(flags.length).toBeGreaterThan(15)
    for (const flag of flags) {
      expect(
        exampleLines.some((l) => l.split(/\s+/).includes(flag)),
        `no example for ${flag}`,
      ).toBe(true)
    }
    expect(r.stdout).toContain(EXAMPLES.trim().split('\n')[0])
  })

  it('--version prints the package version', async () => {
    const pkg = JSON.parse((await import('node:fs')).readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    const r = await cli(['--version'])
    expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' })
  })
})
