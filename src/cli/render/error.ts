import { AasError } from '../../errors.js'
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

// An unexpected failure still gets an Error: line and a non-zero exit, with the cause kept.
export function toAasError(err: unknown): AasError {
  if (err instanceof AasError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new AasError('IO_FAILED', `unexpected failure: ${message}`, {
    hint: 'Nothing was changed past the last completed step; run `aas-migrate --doctor` and report this if it repeats.',
    cause: err,
  })
}
