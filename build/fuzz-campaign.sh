#!/usr/bin/env bash
# A long fuzz campaign over every Fuzz* target in the module (not part of CI:
# CI fuzzes each target for 10 s). For each target it prints the executions,
# the new interesting inputs found this run and the corpus size, and at the
# end a table of all targets. A crash leaves its input under the package's
# testdata/fuzz/<Target>/, where `go test` replays it from then on: commit
# that file with the fix and it is the regression test.
#
#   build/fuzz-campaign.sh                 every target, 10 minutes each
#   FUZZTIME=30m build/fuzz-campaign.sh    longer
#   build/fuzz-campaign.sh ./proto/...     only these packages
#   TARGETS='^Fuzz(Parser|Handle)$' build/fuzz-campaign.sh   only the targets whose names match
#
# Exit status: 0 when no target found a failing input, 1 otherwise.
set -uo pipefail

cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
FUZZTIME=${FUZZTIME:-10m}
TARGETS=${TARGETS:-.}
PKGS=("$@")
[ ${#PKGS[@]} -eq 0 ] && PKGS=(./...)

rows=()
failed=0
# `go test -list` prints a package's matching names, then "ok <package> ...".
listing=$(go test -list '^Fuzz' "${PKGS[@]}") || { echo "go test -list failed" >&2; exit 1; }
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for name in "${names[@]}"; do
			[[ $name =~ $TARGETS ]] || continue
			dir=$(go list -f '{{.Dir}}' "$pkg")
			corpus="$dir/testdata/fuzz/$name"
			before=$(ls "$corpus" 2>/dev/null | wc -l)
			echo "==== $pkg $name ($FUZZTIME, $(date -u +%H:%M:%S))"
			log=$(mktemp)
			go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1
			status=$?
			# The coordinator's last progress line:
			# "fuzz: elapsed: 10m0s, execs: 123456 (205/sec), new interesting: 3 (total: 40)"
			last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1)
			execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
			newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
			total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
			after=$(ls "$corpus" 2>/dev/null | wc -l)
			result=ok
			if ((status != 0)); then
				if ((after == before)) && grep -q '^    context deadline exceeded$' "$log"; then
					# Go 1.26's coordinator deadline race (go.dev/issue/75804):
					# no failing input was written, so it is not a crash.
					result="ok (deadline race, go.dev/issue/75804)"
				else
					result="FAILED: input in ${corpus#"$PWD"/}"
					failed=1
					tail -30 "$log"
				fi
			fi
			rm -f "$log"
			rows+=("$(printf '%-44s %-34s %12s %6s %7s  %s' "${pkg#github.com/meshgo/meshagent/}" "$name" "${execs:-?}" "${newi:-?}" "${total:-?}" "$result")")
			echo "${rows[-1]}"
		done
		names=()
		;;
	esac
done <<<"$listing"

echo
printf '%-44s %-34s %12s %6s %7s  %s\n' package target execs new corpus result
printf '%s\n' "${rows[@]}"
exit $failed
