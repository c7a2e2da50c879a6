import { describe, expect, it } from 'vitest'
import type { ScriptFile } from '../../src/migrations/discover.js'
import { planChain } from '../../src/migrations/plan.js'

const s = (from: number, ext: ScriptFile['ext'] = 'mjs'): ScriptFile => ({
  file: `_migrations/v${from}_to_v${from + 1}.${ext}`,
  path: `/vault/_migrations/v${from}_to_v${from + 1}.${ext}`,
  from,
  to: from + 1,
  ext,
})

describe('planChain', () => {
  it('when every step exists then plans them in order from the vault version to the target only', () => {
    const plan = planChain({ current: 1, target: 3, scripts: [s(3), s(2, 'ts'), s(1), s(0)] })
    expect(plan.ok).toBe(true)
    if (!plan.ok) return
    expect(plan.steps.map((st) => [st.from, st.to, st.script.file])).toEqual([
      [1, 2, '_migrations/v1_to_v2.mjs'],
      [2, 3, '_migrations/v2_to_v3.ts'],
    ])
  })

  it('when the vault is unversioned (v0) then the chain starts at v0_to_v1', () => {
    const plan = planChain({ current: 0, target: 1, scripts: [s(0)] })
    expect(plan.ok && plan.steps.map((st) => st.script.file)).toEqual(['_migrations/v0_to_v1.mjs'])
  })

  it.each([
    [2, 2],
    [3, 2],
  ])('when the vault is at v%i and the target is v%i then refuses with NOT_ABOVE_CURRENT', (current, target) => {
    const plan = planChain({ current, target, scripts: [s(1), s(2)] })
    expect(plan.ok).toBe(false)
    if (plan.ok) return
    expect(plan.error.code).toBe('NOT_ABOVE_CURRENT')
    expect(plan.error.data).toEqual({ current, target })
    expect(plan.error.message.startsWith(`Target version v${target} is not above current v${current}.`)).toBe(true)
  })

  it('when the last step is missing then refuses with CHAIN_GAP listing the missing step and what was found', () => {
    const plan = planChain({ current: 1, target: 3, scripts: [s(1)] })
    expect(plan.ok).toBe(false)
    if (plan.ok) return
    expect(plan.error.code).toBe('CHAIN_GAP')
    expect(plan.error.data).toEqual({ current: 1, target: 3, missing: [{ from: 2, to: 3 }], found: ['_migrations/v1_to_v2.mjs'] })
    expect(plan.error.message.startsWith('No migration script for v2 -> v3')).toBe(true)
  })

  it('when a middle step and the first step are missing then CHAIN_GAP lists every missing step', () => {
    const plan = planChain({ current: 1, target: 5, scripts: [s(2), s(4)] })
    expect(plan.ok).toBe(false)
    if (plan.ok) return
    expect(plan.error.code).toBe('CHAIN_GAP')
    expect(plan.error.data.missing).toEqual([
      { from: 1, to: 2 },
      { from: 3, to: 4 },
    ])
    expect(plan.error.data.found).toEqual(['_migrations/v2_to_v3.mjs', '_migrations/v4_to_v5.mjs'])
    expect(plan.error.message.startsWith('No migration script for v1 -> v2')).toBe(true)
  })

  it('when no script exists at all then CHAIN_GAP says nothing was found', () => {
    const plan = planChain({ current: 1, target: 2, scripts: [] })
    expect(!plan.ok && [plan.error.code, plan.error.data.found]).toEqual(['CHAIN_GAP', []])
  })

  it('when two scripts cover a needed step then refuses with SCRIPT_DUPLICATE', () => {
    const plan = planChain({ current: 1, target: 2, scripts: [s(1), s(1, 'ts')] })
    expect(!plan.ok && [plan.error.code, plan.error.data.files]).toEqual(['SCRIPT_DUPLICATE', ['_migrations/v1_to_v2.mjs', '_migrations/v1_to_v2.ts']])
  })

  it('when the target is not a whole number then refuses with USAGE', () => {
    const plan = planChain({ current: 1, target: 2.5, scripts: [s(1), s(2)] })
    expect(!plan.ok && plan.error.code).toBe('USAGE')
  })
})
