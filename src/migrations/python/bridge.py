"""aas-migrate's Python bridge: runs atomic-agents ``.py`` migration scripts unchanged.

One long-lived process per script worker (src/migrations/python-bridge.ts starts it).
Standard library and PyYAML only.

Protocol: frames both ways on the process's original stdin and stdout, each a 4-byte
big-endian length then that many bytes of UTF-8 JSON. File descriptors 0 and 1 are
moved aside first: fd 0 becomes /dev/null and fd 1 the stderr, so a script's print(),
input() or os.write(1, ...) never touches the protocol.

  bridge -> engine  {"op": "hello", "python", "executable", "yaml", "libyaml", "atomic_agents"}
  engine -> bridge  {"op": "load", "scripts": [{"step", "path", "file", "from", "to"}]}
  bridge -> engine  {"op": "loaded", "errors": [{"step", "file", "kind", "message", "line", "traceback", "problems"}]}
  engine -> bridge  {"op": "run", "step", "dry_run", "units": [{"id", "type", "fm" | "meta"}]}
  bridge -> engine  one frame per unit, in order: {"op": "unit", "i", ...outcome}
  engine -> bridge  {"op": "validate", "units": [{"id", "type", "fm" | "meta"}]}
  bridge -> engine  {"op": "validated", "results": [null | "message"]}

`validate` runs the installed atomic-agents' own validators (atomic_agents._schema:
validate_wiki_frontmatter for a wiki page, validate_atomic_note_frontmatter for any other
unit, each with the file's bare name), as its migration runner does after a migration:
null when the unit passes, else the validator's message ("unparseable: ..." when PyYAML
cannot read the front matter, "validation crashed: ..." for an error that is not the
validator's SchemaValidationError); a unit whose validator the installation lacks passes.

A unit's outcome is one of
  {"applies": false}
  {"applies": true, "returned": bool, "changes": [str], "wrote": bool, "removed": [key], "set": [[key, value]]}
  {"error": {"phase", "type", "message", "line", "traceback", "memory"}}    phase: parse | applies_to | migrate
  {"invalid": {"key", "path", "what"}}                                      a value front matter cannot store
Only what changed travels back: keys removed and keys set, compared with the front
matter as loaded (type-strict: True is not 1, 2.0 is not 2). Values are JSON, with
tags for what JSON lacks: {"$date": "2026-01-01"}, {"$datetime": "2026-01-01 10:00:00"},
{"$float": "2.0"} (the text PyYAML writes), {"$map": {...}} (a dict with a key that
starts with "$").

A unit's front matter comes as its YAML text ("fm"), which PyYAML's safe loader parses
here, or, when the engine is sure of every value (src/migrations/python-typed.ts), as
"meta": its keys and values already typed as that loader types them, in order, as
[[key, value], ...] with dates tagged {"$date": "2026-01-01"}; nothing is parsed then.

The handle a script gets is the atomic-agents MigratableUnit contract: unit_id (the
unit's absolute path), unit_type, dry_run, read_frontmatter() (a fresh copy each call,
typed by PyYAML's safe loader, CSafeLoader when available) and write_frontmatter(meta)
(full replacement). The engine always runs the chain on a scratch copy, never on the
live file, so write_frontmatter() records the write in a dry run too: the dry run's
diff and validation are then those of the real run (the handle still reports
dry_run=True, and the live vault is never written in a dry run).
"""

import copy
import datetime
import importlib.util
import json
import os
import queue
import struct
import sys
import threading
import traceback
import types

try:
    import yaml
except ImportError as exc:  # the engine probes for PyYAML first; this is the fallback
    sys.stderr.write("aas-migrate bridge: PyYAML is not installed: %s\n" % exc)
    sys.exit(3)

_LOADER = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_MAX_SAFE_INT = 2**53 - 1
_IMMUTABLE = (str, int, float, bool, type(None), datetime.date, datetime.datetime, datetime.time, bytes)


class MigratableUnit:
    """The handle a migration script gets for one unit (atomic-agents contract)."""

    __slots__ = ("unit_id", "unit_type", "dry_run", "_meta", "_written")

    def __init__(self, unit_id, unit_type, dry_run, meta):
        self.unit_id = unit_id
        self.unit_type = unit_type
        self.dry_run = dry_run
        self._meta = meta
        self._written = None

    def read_frontmatter(self):
        return _copy(self._meta if self._written is None else self._written)

    def write_frontmatter(self, metadata):
        if not isinstance(metadata, dict):
            raise TypeError("write_frontmatter() needs a dict, got %s" % type(metadata).__name__)
        self._written = _copy(metadata)

    def __repr__(self):
        return "MigratableUnit(unit_id=%r, unit_type=%r, dry_run=%r)" % (self.unit_id, self.unit_type, self.dry_run)


class Unrepresentable(Exception):
    def __init__(self, path, what):
        Exception.__init__(self, what)
        self.path = path
        self.what = what


def _copy(value):
    # A deep copy that is fast for what front matter holds (dicts, lists, scalars).
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def _same(a, b):
    # Equality that also compares types: a script that sets True where 1 was, or 2.0
    # where 2 was, changed the value (Python's == would say it did not).
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is dict:
        if len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not _same(v, b[k]):
                return False
        return True
    if ta is list or ta is tuple:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if ta is float and a != a:
        return b != b
    try:
        return bool(a == b)
    except Exception:
        return False


def _float_text(v):
    # The text PyYAML's safe dumper writes for a float.
    if v != v:
        return ".nan"
    if v == float("inf"):
        return ".inf"
    if v == float("-inf"):
        return "-.inf"
    text = repr(v).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def _path(parent, key):
    if isinstance(key, int):
        return "%s[%d]" % (parent, key)
    return key if parent == "" else "%s.%s" % (parent, key)


def _key(k, path):
    # A mapping key as the engine's YAML reader has it (a string).
    if type(k) is str:
        return k
    if isinstance(k, str):
        return str(k)
    if isinstance(k, int) and not isinstance(k, bool):
        return str(k)
    if type(k) is datetime.date:
        return k.isoformat()
    raise Unrepresentable(path or repr(k), "a key %r of type %s" % (k, type(k).__name__))


def _encode(v, path):
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
            return v
        raise Unrepresentable(path, "the integer %d, beyond the 2^53 that the engine keeps exactly" % v)
    if t is float:
        return {"$float": _float_text(v)}
    if t is datetime.datetime:
        return {"$datetime": v.isoformat(" ")}
    if t is datetime.date:
        return {"$date": v.isoformat()}
    if t is dict:
        out = {}
        for k, x in v.items():
            key = _key(k, _path(path, repr(k)))
            out[key] = _encode(x, _path(path, key))
        if any(k.startswith("$") for k in out):
            return {"$map": out}
        return out
    if t is list or t is tuple:
        return [_encode(x, _path(path, i)) for i, x in enumerate(v)]
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, str):
        return _encode(str(v), path)
    if isinstance(v, int):
        return _encode(int(v), path)
    if isinstance(v, float):
        return _encode(float(v), path)
    kind = "a set" if isinstance(v, (set, frozenset)) else "a value of type %s" % t.__name__
    raise Unrepresentable(path, kind)


def _load_meta(fm):
    # The front matter as PyYAML's safe loader types it: a dict ({} when empty).
    meta = yaml.load(fm, Loader=_LOADER) if fm else None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise yaml.YAMLError("front matter is %s, not a mapping" % type(meta).__name__)
    return meta


def _unit_meta(u):
    # A unit's front matter: typed by the engine ("meta") or parsed here ("fm").
    pairs = u.get("meta")
    if pairs is None:
        return _load_meta(u["fm"])
    return {k: _typed(v) for k, v in pairs}


def _typed(v):
    if isinstance(v, list):
        return [_typed(x) for x in v]
    if isinstance(v, dict):
        return datetime.date.fromisoformat(v["$date"])
    return v


def _last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def _script_line(exc, path):
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    return line


def _failure(phase, exc, path):
    return {
        "phase": phase,
        "type": type(exc).__name__,
        "message": _last_line(exc),
        "line": _script_line(exc, path),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "memory": isinstance(exc, MemoryError),
    }


class Bridge:
    def __init__(self, out):
        self.out = out
        self.scripts = {}

    def send(self, message):
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self.out.write(struct.pack(">I", len(data)) + data)
        self.out.flush()

    def load(self, message):
        errors = []
        for s in message["scripts"]:
            path, file = s["path"], s["file"]
            stem = os.path.splitext(os.path.basename(path))[0]
            try:
                spec = importlib.util.spec_from_file_location("_atomic_agents_migration_" + stem, path)
                if spec is None or spec.loader is None:
                    raise ImportError("cannot load %s" % path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except SyntaxError as exc:
                errors.append({"step": s["step"], "file": file, "kind": "syntax", "message": "%s: %s" % (type(exc).__name__, exc.msg), "line": exc.lineno, "traceback": None, "problems": []})
                continue
            except BaseException as exc:  # an import-time failure, SystemExit included
                errors.append({"step": s["step"], "file": file, "kind": "import", "message": _last_line(exc), "line": _script_line(exc, path), "traceback": _failure("load", exc, path)["traceback"], "problems": []})
                continue
            problems = []
            for attr in ("FROM_VERSION", "TO_VERSION", "applies_to", "migrate"):
                if not hasattr(module, attr):
                    problems.append("%s is missing" % attr)
            for attr in ("applies_to", "migrate"):
                if hasattr(module, attr) and not callable(getattr(module, attr)):
                    problems.append("%s is not a function" % attr)
            if hasattr(module, "FROM_VERSION") and module.FROM_VERSION != s["from"]:
                problems.append("FROM_VERSION is %r but the file name says %d" % (module.FROM_VERSION, s["from"]))
            if hasattr(module, "TO_VERSION") and module.TO_VERSION != s["to"]:
                problems.append("TO_VERSION is %r but the file name says %d" % (module.TO_VERSION, s["to"]))
            if problems:
                errors.append({"step": s["step"], "file": file, "kind": "invalid", "message": "; ".join(problems), "line": None, "traceback": None, "problems": problems})
                continue
            self.scripts[s["step"]] = (module, path)
        self.send({"op": "loaded", "errors": errors})

    def validate(self, message):
        results = []
        schema, why = _atomic_schema()
        for u in message["units"]:
            results.append(_validate_unit(schema, why, u))
        self.send({"op": "validated", "results": results})

    def run(self, message):
        module, path = self.scripts[message["step"]]
        dry_run = bool(message["dry_run"])
        for i, u in enumerate(message["units"]):
            outcome = self.unit(module, path, u, dry_run)
            outcome["op"] = "unit"
            outcome["i"] = i
            self.send(outcome)

    def unit(self, module, path, u, dry_run):
        try:
            meta = _unit_meta(u)
        except BaseException as exc:
            failure = _failure("parse", exc, path)
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                failure["line"] = mark.line + 1
                failure["column"] = mark.column + 1
            return {"error": failure}
        unit = MigratableUnit(u["id"], u["type"], dry_run, meta)
        try:
            applies = bool(module.applies_to(unit))
        except BaseException as exc:
            return {"error": _failure("applies_to", exc, path)}
        if not applies:
            return {"applies": False}
        try:
            summary = module.migrate(unit)
            returned = bool(summary)
        except BaseException as exc:
            return {"error": _failure("migrate", exc, path)}
        changes = []
        if isinstance(summary, dict) and isinstance(summary.get("changes"), (list, tuple)):
            changes = [str(c) for c in summary["changes"]]
        written = unit._written
        removed, changed = [], []
        try:
            if written is not None:
                for k in meta:
                    if k not in written:
                        removed.append(_key(k, repr(k)))
                for k, v in written.items():
                    if k not in meta or not _same(meta[k], v):
                        key = _key(k, repr(k))
                        changed.append([key, _encode(v, key)])
        except Unrepresentable as exc:
            top = exc.path.split(".")[0].split("[")[0]
            return {"invalid": {"key": top, "path": exc.path, "what": exc.what}}
        return {"applies": True, "returned": returned, "changes": changes, "wrote": written is not None, "removed": removed, "set": changed}


_SCHEMA = []


def _atomic_schema():
    # atomic_agents._schema of the installed atomic-agents (imported once), or why not.
    if not _SCHEMA:
        if _atomic_agents_origin() is None:
            _SCHEMA.append((None, "atomic_agents is not installed in this interpreter"))
        else:
            try:
                _SCHEMA.append((importlib.import_module("atomic_agents._schema"), None))
            except BaseException as exc:
                _SCHEMA.append((None, "atomic_agents._schema cannot be imported: %s" % _last_line(exc)))
    return _SCHEMA[0]


def _validate_unit(schema, why, u):
    if schema is None:
        return "no validator: %s" % why
    name = "validate_wiki_frontmatter" if u["type"] == "wiki" else "validate_atomic_note_frontmatter"
    check = getattr(schema, name, None)
    if not callable(check):
        return None  # the installation judges none of this kind (the engine's note says so)
    try:
        meta = _unit_meta(u)
    except BaseException as exc:
        return "unparseable: %s" % _last_line(exc)
    rejected = getattr(schema, "SchemaValidationError", None)
    try:
        check(meta, filename=os.path.basename(u["id"]))
    except BaseException as exc:
        if isinstance(rejected, type) and isinstance(exc, rejected):
            return str(exc) or type(exc).__name__
        return "validation crashed: %s" % _last_line(exc)
    return None


def _install_stub():
    # `from atomic_agents.migration import MigratableUnit` must work without atomic-agents
    # installed; an installed atomic-agents is never shadowed.
    try:
        if importlib.util.find_spec("atomic_agents") is not None:
            return
    except (ImportError, ValueError):
        return
    package = types.ModuleType("atomic_agents")
    package.__path__ = []
    package.__doc__ = "aas-migrate's stand-in: atomic-agents is not installed in this interpreter."
    migration = types.ModuleType("atomic_agents.migration")
    migration.MigratableUnit = MigratableUnit
    migration.__all__ = ["MigratableUnit"]
    package.migration = migration
    sys.modules["atomic_agents"] = package
    sys.modules["atomic_agents.migration"] = migration


def _atomic_agents_origin():
    module = sys.modules.get("atomic_agents")
    if module is not None and getattr(module, "__path__", None) == []:
        return None
    try:
        spec = importlib.util.find_spec("atomic_agents")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return spec.origin or (list(spec.submodule_search_locations or [None])[0])


def _limit_memory(mb):
    if mb <= 0:
        return
    try:
        import resource

        limit = (mb + 64) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _reader(stream, inbox):
    # Frames from the engine. End of input means the engine (or its worker) is gone:
    # the process exits at once, even while a script runs.
    read = stream.read
    while True:
        head = read(4)
        if len(head) < 4:
            os._exit(0)
        (n,) = struct.unpack(">I", head)
        body = read(n)
        if len(body) < n:
            os._exit(0)
        inbox.put(json.loads(body.decode("utf-8")))


def main(argv):
    memory_mb = 0
    if len(argv) >= 2 and argv[0] == "--memory-mb":
        memory_mb = int(argv[1])
    sys.dont_write_bytecode = True  # never a __pycache__/ in the vault's _migrations/
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, "r")
    sys.stdout = sys.stderr
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # the bridge's own folder is not an import location for scripts
    _install_stub()
    _limit_memory(memory_mb)

    bridge = Bridge(proto_out)
    bridge.send({
        "op": "hello",
        "python": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "yaml": getattr(yaml, "__version__", "?"),
        "libyaml": _LOADER is not yaml.SafeLoader,
        "atomic_agents": _atomic_agents_origin(),
    })
    inbox = queue.Queue()
    threading.stack_size(512 * 1024)
    threading.Thread(target=_reader, args=(proto_in, inbox), daemon=True).start()
    while True:
        message = inbox.get()
        op = message.get("op")
        if op == "load":
            bridge.load(message)
        elif op == "run":
            bridge.run(message)
        elif op == "validate":
            bridge.validate(message)
        elif op == "exit":
            os._exit(0)
        else:
            sys.stderr.write("aas-migrate bridge: unknown request %r\n" % op)
            os._exit(4)


if __name__ == "__main__":
    main(sys.argv[1:])
