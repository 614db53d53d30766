#!/usr/bin/env bash
# Release builds of the agent: one static binary per target (CGO_ENABLED=0,
# so nothing to install beside it and no libc version to match), with the
# version and commit date the agent reports to MeshCentral stamped in.
#
#   build/release.sh                  all targets into dist/
#   VERSION=1.2.3 build/release.sh    explicit version (default: git describe)
#   OUT=/tmp/out build/release.sh linux/amd64 windows/amd64
#
# Windows binaries carry no version resource (no icon, no file version in
# Explorer's properties): adding one needs a resource compiler step
# (go-winres or windres) that is not part of this script yet.
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

mkdir -p "$OUT"
for t in "${TARGETS[@]}"; do
	goos=${t%/*} goarch=${t#*/}
	name="meshagent-$goos-$goarch"
	[ "$goos" = windows ] && name="$name.exe"
	echo "building $OUT/$name ($VERSION, $COMMIT_DATE)"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
		-ldflags "-s -w -X 'main.version=$VERSION' -X 'main.commitDate=$COMMIT_DATE'" \
		-o "$OUT/$name" ./cmd/meshagent
done
(cd "$OUT" && sha256sum meshagent-* > SHA256SUMS)
echo "wrote $OUT/SHA256SUMS"
