#!/usr/bin/env bash
# An agent-like writer for live-agents.test.ts. It writes in a loop until STOP exists
# (or its parent is gone) and, after each write that succeeded, logs one line to LOG:
#   FILE <TAB> LINE <TAB> START_US <TAB> END_US
# LINE is a line now in FILE (a unique marker); the times are microseconds since the
# epoch around the write, lock wait included.
#
# usage: live-writer.sh ROOT AGENT MODE TAG LOG STOP
#   MODE flock: each write holds <ROOT>/<AGENT>/.lock (flock(2) through flock(1) on an
#               open descriptor, as the atomic-agents runtime does); none: no lock.
# environment:
#   GATE       until this file exists, only append to a run log outside the snapshot
#              scope (<agent>/log/*.jsonl); afterwards create new units in the agent's
#              unit folders (beside units the engine rewrites), append to them, and
#              append to a run log under <agent>/runs/
#   EDIT_GATE  once this file exists, also append to the units listed in EDIT_LIST
#   EDIT_LIST  a file of absolute unit paths, one a line
#   EDIT_EVERY every how many writes one is an edit of a listed unit (default 4)
#   PAUSE      seconds to wait between writes (default 0.002; read -t, no fork)
set -u
root=$1 agent=$2 mode=$3 tag=$4 log=$5 stop=$6
gate=${GATE:-} editgate=${EDIT_GATE:-} editlist=${EDIT_LIST:-} every=${EDIT_EVERY:-4} pause=${PAUSE:-0.002}
adir="$root/$agent"
outlog="$adir/log/$tag-$mode.jsonl"
runs="$adir/runs/$tag-$mode.log"
mapfile -t dirs < <(cd "$adir" && ls -d memory/b* wiki/b* | sort)
edits=()
if [ -n "$editlist" ]; then mapfile -t edits < "$editlist"; fi
mkdir -p "$adir/runs"
fifo=$(mktemp -u "${TMPDIR:-/tmp}/live-writer.XXXXXX")
mkfifo "$fifo"
exec 8<>"$fifo"
rm -f "$fifo"
if [ "$mode" = flock ]; then exec 9>>"$adir/.lock"; fi
set -C # a new unit is created with O_EXCL, never over an existing file

# write new|append FILE LINE [TEXT]: TEXT (default LINE) is written; LINE is logged.
write() {
  local op=$1 file=$2 line=$3 text=${4:-$3} t0=$EPOCHREALTIME ok=0
  if [ "$mode" = flock ]; then flock -x 9 || return 1; fi
  if [ "$op" = new ]; then
    printf '%s\n' "$text" 2>/dev/null > "$file" && ok=1
  else
    printf '%s\n' "$text" 2>/dev/null >> "$file" && ok=1
  fi
  if [ "$mode" = flock ]; then flock -u 9; fi
  local t1=$EPOCHREALTIME
  if [ $ok = 1 ]; then printf '%s\t%s\t%s\t%s\n' "$file" "$line" "${t0/./}" "${t1/./}" >> "$log"; fi
  return $((1 - ok))
}

parent=$PPID n=0 last=
while [ ! -e "$stop" ] && kill -0 "$parent" 2>/dev/null; do
  n=$((n + 1))
  m="live-write $tag $mode $n"
  if [ -n "$gate" ] && [ ! -e "$gate" ]; then
    write append "$outlog" "{\"marker\":\"$m\"}"
  elif [ ${#edits[@]} -gt 0 ] && [ -n "$editgate" ] && [ -e "$editgate" ] && [ $((n % every)) -eq 0 ]; then
    write append "${edits[$(( (n / every) % ${#edits[@]} ))]}" "$m"
  else
    case $((n % 3)) in
      0)
        f="$adir/${dirs[$(( (n / 3) % ${#dirs[@]} ))]}/user_live_${tag}_${mode}_$n.md"
        case $f in */wiki/*) f="${f%/user_live_*}/page_live_${tag}_${mode}_$n.md" ;; esac
        if [[ $f == */wiki/* ]]; then
          fm="schema_version: 1"$'\n'"type: wiki_page"$'\n'"name: live page $n"$'\n'"description: written by a live agent"
        else
          fm="schema_version: 1"$'\n'"name: live note $n"$'\n'"description: written by a live agent"$'\n'"type: user"$'\n'"captured: 2026-05-01"$'\n'"last_seen: 2026-05-01"$'\n'"sources:"$'\n'"  - live"$'\n'"confidence: low"
        fi
        write new "$f" "$m" "---"$'\n'"$fm"$'\n'"---"$'\n'"$m" && last=$f
        ;;
      1)
        if [ -n "$last" ]; then write append "$last" "$m"; fi
        ;;
      2)
        write append "$runs" "$m" || mkdir -p "$adir/runs"
        ;;
    esac
  fi
  read -r -t "$pause" -u 8 _ || true
done
