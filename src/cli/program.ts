import { Command, CommanderError, Option } from 'commander'
import { AasError } from '../errors.js'
import { SCRIPT_LANGS, type ScriptLang } from './new-script.js'
import { ENGINE_VERSION } from '../version.js'

export type CliAction =
  | { kind: 'status' }
  | { kind: 'migrate'; target: number; dryRun: boolean; stat: boolean; commit: boolean; report: string | undefined; open: boolean }
  | { kind: 'apply'; preview: string; commit: boolean }
  | { kind: 'list-previews' }
  | { kind: 'run-report'; run: string; report: string; open: boolean }
  | { kind: 'list-snapshots' }
  | { kind: 'rollback'; snapshot: string; force: boolean; commit: boolean }
  | { kind: 'export-snapshot'; snapshot: string; out: string | undefined }
  | { kind: 'import-snapshot'; file: string }
  | { kind: 'doctor' }
  | { kind: 'new-script'; from: number | undefined; lang: ScriptLang }
  | { kind: 'push-snapshots'; remote: string | undefined }
  | { kind: 'fetch-snapshots'; remote: string }
  | { kind: 'break-lease' }
  | { kind: 'unset-remote' } // --unset-remote given alone
  | { kind: 'prune-snapshots'; keepLast: number | undefined; keepWithinSeconds: number | undefined }

export interface CliRequest {
  action: CliAction
  agentsRoot: string | undefined
  json: boolean
  progress: boolean
  color: boolean
  lockTimeoutMs: number
  python: string | undefined // --python: the interpreter for .py scripts
  remote: string | undefined // --remote: sets aas.remote, the remote of the snapshot commands
  unsetRemote: boolean // --unset-remote: removes aas.remote first (alone: the whole command)
}

// `json`: --json was on the command line, so even a usage error or --version answers in JSON.
export type ParseOutcome =
  | { kind: 'request'; request: CliRequest }
  | { kind: 'exit'; code: number; stdout: string; stderr: string; json: boolean; error?: AasError; version?: string }

// One example per flag, in an order that works as a session on a v1 vault with a
// v1 -> v2 -> v3 chain (test/e2e/docs-commands.test.ts runs them; SNAPSHOT is the
// snapshot the previous command printed).
export const EXAMPLES = `
Examples:
  aas-migrate --status                                   inventory, scripts, chain, snapshots, lock
  aas-migrate --agents-root ~/docs/agents --status       another vault (default: $ATOMIC_AGENTS_ROOT)
  aas-migrate --status --json                            one JSON document on stdout (docs/json.md)
  aas-migrate --to v2 --dry-run                          preview: unified diff + validation, nothing written
  aas-migrate --to v2 --dry-run --stat --no-progress     the preview as a per-file summary, no progress lines
  aas-migrate --to v2 --dry-run --report review.html    the preview as one HTML file: header, patterns, every diff
  aas-migrate --to v2 --dry-run --report review.html --open   the same, opened in a browser (when a display exists)
  aas-migrate --to v2 --dry-run --python python3         .py scripts run by this interpreter (else $AAS_PYTHON, $VIRTUAL_ENV, python3)
  aas-migrate --list-previews                            the dry runs' previews: age, whether each still applies
  aas-migrate --apply latest --commit                    apply exactly the newest preview, no script run; --commit: one branch commit too
  aas-migrate --report run.html --run latest            the report of a recorded run (a run id, or latest), from the store
  aas-migrate --to v3 --lock-timeout 60                  snapshot, migrate, validate, apply (wait 60 s for agent locks)
  aas-migrate --list-snapshots                           snapshots, newest first
  aas-migrate --rollback SNAPSHOT                        restore a snapshot; a safety snapshot is taken first
  aas-migrate --rollback SNAPSHOT --force                even when paths changed after the run
  aas-migrate --export-snapshot SNAPSHOT --out snap.tar.gz   a tarball in the Python runner's layout
  aas-migrate --import-snapshot snap.tar.gz              a tarball becomes the snapshot "snap"
  aas-migrate --push-snapshots                           push snapshots and runs to aas.remote, else origin (refs/aas/* only)
  aas-migrate --fetch-snapshots origin                   fetch the snapshots a remote has (a new machine: then --rollback)
  aas-migrate --list-snapshots --remote origin           set aas.remote; the list says where each snapshot is
  aas-migrate --prune-snapshots --keep-last 10           delete older snapshots (never the newest, nor a kept one's run)
  aas-migrate --prune-snapshots --keep-within 30d --remote origin   keep 30 days of snapshots, here and on origin
  aas-migrate --break-lease                              remove the lease of a run that died on another machine (shows its holder)
  aas-migrate --unset-remote                             remove aas.remote: no lease, no push after a run (alone or with any command)
  aas-migrate --doctor --no-color                        health checks, each failure with its fix (no colors)
  aas-migrate --new-script                               write _migrations/v<N>_to_v<N+1>.ts and a test for it
  aas-migrate --new-script --lang py                     the same step as a .py script in the atomic-agents style
  aas-migrate --version                                  print the version

agents_root: --agents-root, else $ATOMIC_AGENTS_ROOT, else ~/docs/agents.
Colors only on a terminal; NO_COLOR=1 or --no-color turns them off. Docs: docs/ in the package.
Exit codes: 0 done; 1 refused or failed (nothing lost); 2 usage error.`

const ACTIONS = [
  'status',
  'to',
  'apply',
  'listPreviews',
  'run',
  'listSnapshots',
  'rollback',
  'exportSnapshot',
  'importSnapshot',
  'doctor',
  'newScript',
  'pushSnapshots',
  'fetchSnapshots',
  'pruneSnapshots',
  'breakLease',
] as const
const ACTION_FLAGS: Record<(typeof ACTIONS)[number], string> = {
  status: '--status',
  to: '--to',
  apply: '--apply',
  listPreviews: '--list-previews',
  run: '--run',
  listSnapshots: '--list-snapshots',
  rollback: '--rollback',
  exportSnapshot: '--export-snapshot',
  importSnapshot: '--import-snapshot',
  doctor: '--doctor',
  newScript: '--new-script',
  pushSnapshots: '--push-snapshots',
  fetchSnapshots: '--fetch-snapshots',
  pruneSnapshots: '--prune-snapshots',
  breakLease: '--break-lease',
}

// `--to` accepts `v2` or `2`; anything else is a usage error naming the accepted forms.
export function parseTargetVersion(value: string, flag = '--to'): number {
  const m = /^v?(\d{1,6})$/.exec(value.trim())
  if (!m) {
    throw new AasError('USAGE', `${flag} expects a version like v2 or 2, got '${value}'.`, {
      hint: `Pass a schema version, e.g. ${flag} v2.`,
      data: { flag, value },
    })
  }
  return Number(m[1])
}

// `--lang` for --new-script: ts (the default) or py.
function parseLang(value: string | boolean | undefined): ScriptLang {
  if (value === undefined || value === false) return 'ts'
  const lang = String(value).trim().toLowerCase()
  if ((SCRIPT_LANGS as readonly string[]).includes(lang)) return lang as ScriptLang
  throw new AasError('USAGE', `--lang expects ${SCRIPT_LANGS.join(' or ')}, got '${String(value)}'.`, {
    hint: 'Pass --lang py for a Python script in the atomic-agents style, or leave it out for TypeScript.',
    data: { flag: '--lang', value },
  })
}

function parseKeepLast(value: string): number {
  if (!/^\d{1,6}$/.test(value.trim()) || Number(value) < 1) {
    throw new AasError('USAGE', `--keep-last expects a number of snapshots (1 or more), got '${value}'.`, {
      hint: 'Pass e.g. --keep-last 10.',
      data: { flag: '--keep-last', value },
    })
  }
  return Number(value)
}

const DURATION_UNITS: Record<string, number> = { h: 3600, d: 86400, w: 7 * 86400 }

// --keep-within: a number and a unit, h (hours), d (days) or w (weeks); in seconds.
function parseDuration(value: string): number {
  const m = /^(\d{1,6})([hdw])$/.exec(value.trim())
  if (!m) {
    throw new AasError('USAGE', `--keep-within expects a duration such as 12h, 30d or 8w, got '${value}'.`, {
      hint: 'Pass e.g. --keep-within 30d.',
      data: { flag: '--keep-within', value },
    })
  }
  return Number(m[1]) * (DURATION_UNITS[m[2] as string] as number)
}

// The actions of snapshots on a remote, from their flags.
function snapshotAction(
  action: 'pushSnapshots' | 'fetchSnapshots' | 'breakLease' | 'pruneSnapshots',
  o: Record<string, string | boolean | undefined>,
): CliAction {
  if (action === 'pushSnapshots') return { kind: 'push-snapshots', remote: typeof o.pushSnapshots === 'string' ? o.pushSnapshots : undefined }
  if (action === 'fetchSnapshots') return { kind: 'fetch-snapshots', remote: String(o.fetchSnapshots) }
  if (action === 'breakLease') return { kind: 'break-lease' }
  return {
    kind: 'prune-snapshots',
    keepLast: typeof o.keepLast === 'string' ? parseKeepLast(o.keepLast) : undefined,
    keepWithinSeconds: typeof o.keepWithin === 'string' ? parseDuration(o.keepWithin) : undefined,
  }
}

function parseLockTimeout(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim())
  if (!m) {
    throw new AasError('USAGE', `--lock-timeout expects seconds (e.g. 30 or 30s or 500ms), got '${value}'.`, {
      hint: 'Pass a duration such as --lock-timeout 30.',
      data: { flag: '--lock-timeout', value },
    })
  }
  const n = Number(m[1])
  return m[2] === 'ms' ? n : n * 1000
}

export function buildProgram(): Command {
  return new Command('aas-migrate')
    .description('Transactional, git-backed schema migrations for atomic-agents vaults.')
    .version(ENGINE_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .option('--agents-root <path>', 'the vault folder (default: $ATOMIC_AGENTS_ROOT or ~/docs/agents)')
    .option('--status', 'show version inventory, scripts, chain, snapshots, lock, interrupted runs')
    .option('--to <version>', 'migrate to schema version vN (e.g. --to v2)')
    .option('--dry-run', 'with --to: show the unified diff and validation, change nothing')
    .option('--stat', 'with --dry-run: a per-file summary instead of the full diff')
    .option('--report <file>', 'with --dry-run: also write a self-contained HTML review report (patterns, every diff) to FILE.html')
    .option('--open', 'with --report: open the report with the platform opener when a display exists')
    .option('--run <run-id>', 'with --report: the report of a recorded run (its id, as --to printed it, or latest), read from the store')
    .option('--apply <run-id>', 'apply exactly what a dry run previewed (its run id, or latest); no script runs')
    .option('--list-previews', "list the dry runs' previews, newest first, with their age and whether they still apply")
    .option('--commit', 'with --to, --apply or --rollback (git vaults): also record one commit on the current branch')
    .option('--list-snapshots', 'list snapshots, newest first, and legacy tarballs not yet imported')
    .option('--rollback <snapshot>', 'restore the vault to a snapshot (a safety snapshot is taken first)')
    .option('--force', 'with --rollback: restore even paths changed after the run')
    .option('--export-snapshot <snapshot>', 'write a snapshot as a .tar.gz in the Python runner layout')
    .option('--out <file>', 'with --export-snapshot: where to write (default _migrations/snapshots/NAME.tar.gz)')
    .option('--import-snapshot <file>', 'turn a Python-runner .tar.gz into a snapshot')
    .option('--push-snapshots [remote]', 'push snapshot and run refs to a git remote (default: aas.remote, else origin); never overwrites one')
    .option('--fetch-snapshots <remote>', 'fetch snapshot and run refs from a git remote (a path, URL or remote name)')
    .option('--prune-snapshots', 'delete old snapshot refs, their runs and dry-run previews (with --keep-last or --keep-within)')
    .option('--keep-last <n>', 'with --prune-snapshots: keep the N newest snapshots')
    .option('--keep-within <duration>', 'with --prune-snapshots: keep the snapshots of the last DURATION (e.g. 12h, 30d, 8w)')
    .option('--break-lease', 'remove refs/aas/lease from the remote after showing its holder (a run that died elsewhere)')
    .option(
      '--remote <remote>',
      'set aas.remote, the remote the snapshot commands use (any command; a path, URL or remote name; with AAS_GIT=js an http(s) URL)',
    )
    .option('--unset-remote', 'remove aas.remote from the store config (alone, or with any command)')
    .option('--doctor', 'check store, transactions, lock, units and chain; print the fix for each failure')
    .option(
      '--new-script [version]',
      'write the next migration script _migrations/v<N>_to_v<N+1>.ts and a test (N: the version given, else the highest script or vault version)',
    )
    .option('--lang <lang>', 'with --new-script: the script language, ts (default) or py (the atomic-agents form)')
    .addOption(new Option('--lock-timeout <seconds>', 'how long to wait for agent locks before refusing').default('30'))
    .option('--python <path>', 'the Python interpreter for .py scripts (default: $AAS_PYTHON, else $VIRTUAL_ENV/bin/python, else python3)')
    .option('--json', 'print one JSON document on stdout')
    .option('--no-progress', 'no progress lines on stderr')
    .option('--no-color', 'no colors (also NO_COLOR)')
    .addHelpText('after', EXAMPLES)
    .allowExcessArguments(false)
    .showSuggestionAfterError(true)
}

// The request of an action, with the options every action takes.
function request(o: Record<string, string | boolean | undefined>, action: CliAction, env: NodeJS.ProcessEnv): ParseOutcome {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== ''
  return {
    kind: 'request',
    request: {
      action,
      agentsRoot: typeof o.agentsRoot === 'string' ? o.agentsRoot : undefined,
      json: Boolean(o.json),
      progress: o.progress !== false && !o.json,
      color: o.color !== false && !noColor,
      lockTimeoutMs: parseLockTimeout(String(o.lockTimeout)),
      python: typeof o.python === 'string' ? o.python : undefined,
      remote: typeof o.remote === 'string' ? o.remote : undefined,
      unsetRemote: Boolean(o.unsetRemote),
    },
  }
}

function usageError(message: string, json: boolean): ParseOutcome {
  const error = new AasError('USAGE', message, { hint: "Run 'aas-migrate --help' for the flags and an example of each.", data: {} })
  return { kind: 'exit', code: 2, stdout: '', stderr: `Error: ${message}\nRun 'aas-migrate --help' for usage.\n`, json, error }
}

// Flags → one action. Commander handles syntax; the action rules (exactly one action,
// modifiers only with their action) are checked here so they exit 2 with a clear message.
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParseOutcome {
  const json = argv.includes('--json')
  const usage = (message: string): ParseOutcome => usageError(message, json)
  const program = buildProgram()
  let out = ''
  let err = ''
  program.exitOverride()
  program.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s), outputError: (s, write) => write(s) })
  try {
    program.parse(argv, { from: 'user' })
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.version') return { kind: 'exit', code: 0, stdout: out, stderr: err, json, version: ENGINE_VERSION }
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') {
        return { kind: 'exit', code: 0, stdout: out, stderr: err, json: false }
      }
      const text = err.replace(/^error: /, '').trim() || e.message
      return usage(text)
    }
    throw e
  }
  const o = program.opts<Record<string, string | boolean | undefined>>()
  const given = ACTIONS.filter((a) => o[a] !== undefined && o[a] !== false)
  if (o.unsetRemote && o.remote !== undefined)
    return usage('--remote and --unset-remote cannot be combined: pass --remote REMOTE to set aas.remote, or --unset-remote to remove it.')
  if (given.length === 0 && o.unsetRemote) return request(o, { kind: 'unset-remote' }, env)
  if (given.length === 0)
    return usage(
      'no action given: pass one of --status, --to vN, --apply RUN_ID, --list-previews, --report FILE.html --run RUN_ID, --list-snapshots, --rollback, --export-snapshot, --import-snapshot, --doctor, --new-script, --push-snapshots, --fetch-snapshots, --prune-snapshots, --break-lease.',
    )
  if (given.length > 1) return usage(`${given.map((a) => ACTION_FLAGS[a]).join(' and ')} cannot be combined: pass one action at a time.`)
  const action = given[0] as (typeof ACTIONS)[number]
  const modifierOwners: Array<[string, string, boolean]> = [
    ['dryRun', '--dry-run', action === 'to'],
    ['stat', '--stat', action === 'to'],
    ['commit', '--commit', action === 'to' || action === 'apply' || action === 'rollback'],
    ['force', '--force', action === 'rollback'],
    ['out', '--out', action === 'exportSnapshot'],
    ['lang', '--lang', action === 'newScript'],
    ['report', '--report', action === 'to' || action === 'run'],
    ['open', '--open', action === 'to' || action === 'run'],
    ['keepLast', '--keep-last', action === 'pruneSnapshots'],
    ['keepWithin', '--keep-within', action === 'pruneSnapshots'],
  ]
  for (const [key, flag, allowed] of modifierOwners) {
    if (o[key] !== undefined && o[key] !== false && !allowed) return usage(`${flag} does not apply to ${ACTION_FLAGS[action]}.`)
  }
  if (o.stat && !o.dryRun) return usage('--stat needs --dry-run (e.g. --to v2 --dry-run --stat).')
  if (o.commit && o.dryRun) return usage('--commit cannot be combined with --dry-run.')
  if (action === 'to' && o.report !== undefined && !o.dryRun) return usage('--report needs --dry-run (e.g. --to v2 --dry-run --report review.html).')
  if (action === 'run' && o.report === undefined) return usage('--run needs --report (e.g. --report run.html --run latest).')
  if (o.open && o.report === undefined) return usage('--open needs --report (e.g. --to v2 --dry-run --report review.html --open).')
  if (action === 'pruneSnapshots' && o.keepLast === undefined && o.keepWithin === undefined)
    return usage('--prune-snapshots needs --keep-last N or --keep-within DURATION (e.g. --keep-last 10).')

  let cliAction: CliAction
  try {
    switch (action) {
      case 'status':
        cliAction = { kind: 'status' }
        break
      case 'to':
        cliAction = {
          kind: 'migrate',
          target: parseTargetVersion(String(o.to)),
          dryRun: Boolean(o.dryRun),
          stat: Boolean(o.stat),
          commit: Boolean(o.commit),
          report: typeof o.report === 'string' ? o.report : undefined,
          open: Boolean(o.open),
        }
        break
      case 'apply':
        cliAction = { kind: 'apply', preview: String(o.apply), commit: Boolean(o.commit) }
        break
      case 'listPreviews':
        cliAction = { kind: 'list-previews' }
        break
      case 'run':
        cliAction = { kind: 'run-report', run: String(o.run), report: String(o.report), open: Boolean(o.open) }
        break
      case 'listSnapshots':
        cliAction = { kind: 'list-snapshots' }
        break
      case 'rollback':
        cliAction = { kind: 'rollback', snapshot: String(o.rollback), force: Boolean(o.force), commit: Boolean(o.commit) }
        break
      case 'exportSnapshot':
        cliAction = { kind: 'export-snapshot', snapshot: String(o.exportSnapshot), out: typeof o.out === 'string' ? o.out : undefined }
        break
      case 'importSnapshot':
        cliAction = { kind: 'import-snapshot', file: String(o.importSnapshot) }
        break
      case 'doctor':
        cliAction = { kind: 'doctor' }
        break
      case 'newScript':
        cliAction = {
          kind: 'new-script',
          from: typeof o.newScript === 'string' ? parseTargetVersion(o.newScript, '--new-script') : undefined,
          lang: parseLang(o.lang),
        }
        break
      case 'pushSnapshots':
      case 'fetchSnapshots':
      case 'breakLease':
      case 'pruneSnapshots':
        cliAction = snapshotAction(action, o)
        break
    }
    return request(o, cliAction, env)
  } catch (e) {
    if (e instanceof AasError && e.code === 'USAGE') return usage(`${e.message} ${e.hint ?? ''}`.trim())
    throw e
  }
}
