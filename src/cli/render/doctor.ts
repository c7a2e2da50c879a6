import type { DoctorResult } from '../../commands/doctor.js'
import type { Paint } from './paint.js'

// One line per check: `ok` or `FAIL`, what was found, then the fix commands to copy.
export function renderDoctorText(r: DoctorResult, paint: Paint): string {
  const width = Math.max(...r.checks.map((c) => c.title.length))
  const lines: string[] = [`agents_root: ${r.agentsRoot}`]
  for (const c of r.checks) {
    const mark = c.ok ? paint.ok('ok  ') : paint.error('FAIL')
    lines.push(`${mark}  ${c.title.padEnd(width)}  ${c.message}`)
    if (c.ok) continue
    for (const d of c.details.slice(0, 20)) lines.push(`        ${d}`)
    if (c.details.length > 20) lines.push(`        … ${c.details.length - 20} more`)
    for (const f of c.fixes) lines.push(`      ${paint.bold('fix:')} ${f}`)
  }
  const failed = r.checks.filter((c) => !c.ok).length
  lines.push(failed === 0 ? paint.ok('healthy: every check passed') : paint.error(`not healthy: ${failed} of ${r.checks.length} checks failed`))
  return `${lines.join('\n')}\n`
}
