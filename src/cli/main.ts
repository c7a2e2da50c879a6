#!/usr/bin/env node
import './v8-tuning.js' // first: before the modules it tunes are compiled
import { processIo } from './io.js'
import { runCli } from './run.js'

// The only place that sets the process exit code.
const code = await runCli(process.argv.slice(2), processIo())
process.exitCode = code
