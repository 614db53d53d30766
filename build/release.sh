#!/usr/bin/env bash
# Release builds of the agent: one static binary per target (CGO_ENABLED=0,
# so nothing to install beside it and no libc version to match), with the
# version and commit date the agent reports to MeshCentral stamped in.
#
#   build/release.sh                  all targets into dist/
#   VERSION=1.2.3 build/release.sh    explicit version (default: git describe)
#   OUT=/tmp/out build/release.sh linux/amd64 windows/amd64
#
# Windows binaries carry a version resource and icon (internal/winres): the
# committed cmd/meshagent/rsrc_windows_amd64.syso holds the source default
# version, so for a Windows target this script writes one with VERSION
# (the Go linker links every .syso in the package; -overlay does not apply
# to them) and puts the committed file back afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-dist}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
	TARGETS=(linux/amd64 linux/arm64 windows/amd64 darwin/arm64 darwin/amd64)
fi

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
# The C agent's commit-date format, as MeshCentral shows it ("2026-Nov-23 10:04:05+0000").
COMMIT_DATE=${COMMIT_DATE:-$(TZ=UTC git log -1 --date='format-local:%Y-%b-%d %H:%M:%S+0000' --format=%cd 2>/dev/null || date -u '+%Y-%b-%d %H:%M:%S+0000')}

# The agent's build tags have one source, build/agentflags/tags.txt (its
# package says why each is there); internal/agentbin and server-lite's
# agent builds read the same list. `go run ./build/binsize` says what each
# package costs.
TAGS=$(tr -s ' \n' ',' < build/agentflags/tags.txt | sed 's/,$//')
mkdir -p "$OUT"
SYSO=cmd/meshagent/rsrc_windows_amd64.syso
restore_syso() { [ -f "$OUT/.rsrc.committed" ] && mv -f "$OUT/.rsrc.committed" "$SYSO"; return 0; }
trap restore_syso EXIT
for t in "${TARGETS[@]}"; do
	goos=${t%/*} goarch=${t#*/}
	name="meshagent-$goos-$goarch"
	if [ "$goos" = windows ]; then
		name="$name.exe"
		# A file version needs a leading number: "a15c22d" becomes 0.0.0-a15c22d.
		resver=$VERSION
		[[ $resver =~ ^[0-9] ]] || resver="0.0.0-$VERSION"
		[ -f "$OUT/.rsrc.committed" ] || cp "$SYSO" "$OUT/.rsrc.committed"
		go run ./internal/winres/cmd/winres -version "$resver" -o "$SYSO"
	fi
	echo "building $OUT/$name ($VERSION, $COMMIT_DATE)"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -tags "$TAGS" \
		-ldflags "-s -w -X 'main.version=$VERSION' -X 'main.commitDate=$COMMIT_DATE'" \
		-o "$OUT/$name" ./cmd/meshagent
	restore_syso
done
# server-lite's agent updates read the version from here (Go records no
# -ldflags in a -trimpath build's information).
echo "$VERSION" > "$OUT/VERSION"
(cd "$OUT" && sha256sum meshagent-* > SHA256SUMS)
echo "wrote $OUT/SHA256SUMS"
