import type { AasError } from '../../errors.js'
import { renderJson } from './json.js'
import { makePaint, type Paint } from './paint.js'

export function renderErrorText(err: AasError, paint: Paint = makePaint(false)): string {
  let text = `${paint.error('Error:')} ${err.message}\n`
  if (err.hint) text += `  ${paint.bold('fix:')} ${err.hint}\n`
  return text
}

export function renderErrorJson(err: AasError, command: string | null = null): string {
  return renderJson(command, {}, err)
}
