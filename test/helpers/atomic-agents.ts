import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'

// A stand-in for an installed atomic-agents release, written into `dir` (put `dir` on
// PYTHONPATH): the package's `_schema` validators (the interface of atomic-agents'
// `atomic_agents/_schema.py`: validate_atomic_note_frontmatter(meta, filename=None),
// validate_wiki_frontmatter(meta, filename=None), raising SchemaValidationError, with
// CURRENT_SCHEMA_VERSION), `atomic_agents.migration.MigratableUnit` for the scripts'
// import line, and `__version__`. Its rules are this test's, in the spirit of a release
// that brings schema v2: the version, a name, a description, a known type, a
// `provenance` string from v2 on, and the note file-name pattern.
export interface FakeAtomicAgents {
  schemaVersion?: number // CURRENT_SCHEMA_VERSION
  wiki?: boolean // ships validate_wiki_frontmatter
  brokenImport?: boolean // importing atomic_agents._schema raises
  crashOnName?: string // a note with this name makes the validator raise KeyError (a validator bug)
}

export async function installAtomicAgents(
  dir: string,
  { schemaVersion = 2, wiki = true, brokenImport = false, crashOnName }: FakeAtomicAgents = {},
): Promise<string> {
  const pkg = path.join(dir, 'atomic_agents')
  await mkdir(path.join(pkg, 'migration'), { recursive: true })
  await writeFile(path.join(pkg, '__init__.py'), '__version__ = "9.9.0"\n')
  await writeFile(path.join(pkg, 'exceptions.py'), 'class SchemaValidationError(Exception):\n    pass\n')
  await writeFile(
    path.join(pkg, 'migration', '__init__.py'),
    'class MigratableUnit:\n    """The handle a migration script gets (a type hint here)."""\n\n__all__ = ["MigratableUnit"]\n',
  )
  const lines = [
    'import re',
    'from .exceptions import SchemaValidationError',
    brokenImport ? 'import atomic_agents_missing_dependency' : '',
    `CURRENT_SCHEMA_VERSION = ${schemaVersion}`,
    'NOTE_TYPES = {"user", "feedback", "project", "decision", "reference"}',
    'NOTE_FILE = re.compile(r"^(user|feedback|project|decision|reference)(_\\d{4}(-q[1-4])?)?_[a-z0-9_]+\\.md$")',
    '',
    'def _common(meta):',
    '    if meta.get("schema_version") != CURRENT_SCHEMA_VERSION:',
    '        raise SchemaValidationError("schema_version is %r; current is %d" % (meta.get("schema_version"), CURRENT_SCHEMA_VERSION))',
    '    for key, most in (("name", 80), ("description", 200)):',
    '        if not isinstance(meta.get(key), str):',
    '            raise SchemaValidationError("missing required field %r" % key)',
    '        if len(meta[key]) > most:',
    '            raise SchemaValidationError("field %r exceeds max length %d" % (key, most))',
    '    if CURRENT_SCHEMA_VERSION >= 2 and not isinstance(meta.get("provenance"), str):',
    '        raise SchemaValidationError("missing required field \'provenance\'")',
    '',
    'def validate_atomic_note_frontmatter(meta, filename=None):',
    crashOnName ? `    if meta.get("name") == ${JSON.stringify(crashOnName)}:\n        return meta["no_such_key"]` : '',
    '    _common(meta)',
    '    if meta.get("type") not in NOTE_TYPES:',
    '        raise SchemaValidationError("type must be one of %s; got %r" % (sorted(NOTE_TYPES), meta.get("type")))',
    '    if filename is not None and not NOTE_FILE.match(filename):',
    '        raise SchemaValidationError("filename %r does not match {type}_[YYYY[-q#]_]{topic}.md" % filename)',
    '',
    wiki
      ? 'def validate_wiki_frontmatter(meta, filename=None):\n    _common(meta)\n    if meta.get("type") != "wiki_page":\n        raise SchemaValidationError("type must be wiki_page")'
      : '',
    '',
  ]
  await writeFile(path.join(pkg, '_schema.py'), lines.join('\n'))
  return dir
}
