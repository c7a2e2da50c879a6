// A promise that never rejects: its value gives the outcome (or throws its error) when
// asked. Work started early, ahead of the step that needs it, so that a failure is not
// an unhandled rejection when that step is never reached.
export function settled<T>(p: Promise<T>): Promise<() => T> {
  return p.then(
    (v) => () => v,
    (err: unknown) => () => {
      throw err
    },
  )
}
