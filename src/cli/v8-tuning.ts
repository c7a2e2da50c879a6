import { setFlagsFromString } from 'node:v8'

// Imported first by the CLI's entry point, before any module it runs is compiled. A run
// is a short batch job on every unit, in the main thread and the chain's workers (one
// isolate each, each optimizing its own copy of the same hot functions): with V8's
// defaults about a fifth of a 10,000-unit --to's CPU time went to optimizing compiles
// on V8's background threads, which share the machine's cores with the run. Tiering up
// later (a larger interrupt budget) and inlining less per function compile about half as
// many functions, each faster; docs/performance.md has the measurements. Process-wide,
// so the workers get it too; the library leaves its host's flags alone.
setFlagsFromString('--interrupt-budget=528000') // V8 11's default: 67584
setFlagsFromString('--max-inlined-bytecode-size-cumulative=200') // default: 920
