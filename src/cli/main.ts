#!/usr/bin/env node
import { processIo } from './io.js'
import { runCli } from './run.js'

// The only place that sets the process exit code.
const code = await runCli(process.argv.slice(2), processIo())
process.exitCode = code
