# Sourced first by every benchmark script: strict mode, the repository as the working folder, the
# binary measured in TB (TB=path measures that one; else a release build is made here, with
# TB_BUILD_FLAGS added, e.g. --static-swift-stdlib), and `workdir`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${TB:-}" ]; then
    # shellcheck disable=SC2086 # TB_BUILD_FLAGS is a list of flags
    swift build -c release ${TB_BUILD_FLAGS:-} --product thin-backup >/dev/null
    TB="$(swift build -c release ${TB_BUILD_FLAGS:-} --show-bin-path)/thin-backup"
fi

# workdir DIR: W=DIR, emptied now and removed when the script exits.
workdir() {
    W=$1
    rm -rf "$W"; mkdir -p "$W"
    trap 'rm -rf "$W"' EXIT
}
