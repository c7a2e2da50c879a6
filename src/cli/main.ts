#!/usr/bin/env node
import './v8-tuning.js' // first: before the modules it tunes are compiled
import { dropEarlyProbe, startEarlyProbe } from '../migrations/python-interpreter.js'

// `--status` reports the interpreter .py scripts would run with: unless --python names
// it, its probe is started here, before the rest of the CLI loads (hence the dynamic
// imports), and taken by the command (startEarlyProbe).
const args = process.argv.slice(2)
if (args.includes('--status') && !args.some((a) => a === '--python' || a.startsWith('--python='))) startEarlyProbe()
const { processIo } = await import('./io.js')
const { runCli } = await import('./run.js')

// The only place that sets the process exit code.
const code = await runCli(args, processIo())
dropEarlyProbe()
process.exitCode = code
