#!/usr/bin/env bash
# Fetch zipfleet's test and benchmark corpus: 65 real photos and artworks (27 JPEG, 24 PNG,
# 14 WebP; 1.0 to 16.8 megapixels) from four Debian wallpaper packages, listed with their
# sha256 in images.tsv beside this script.
#
#   tools/corpus/fetch.sh DEST
#
# - Idempotent: every file already in DEST is checked against its sha256; only the packages
#   holding missing or differing files are downloaded (`apt-get download`, no root needed)
#   and only those files are unpacked from them (`dpkg-deb --fsys-tarfile | tar`).
# - Verified: each file is written under a temporary name, checked, then renamed, so DEST
#   never holds a file with the wrong bytes under its listed name. The script exits non-zero
#   naming every file it could not get right (say, a package updated upstream).
# - Safe to run concurrently (the report tests and the bench may): runs on one DEST are
#   serialised with flock.
# Needs apt-get with Debian bookworm's sources (the packages are in main), dpkg-deb, tar,
# sha256sum, flock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="$here/images.tsv"
dest="${1:?usage: tools/corpus/fetch.sh DEST}"
for tool in apt-get dpkg-deb tar sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "corpus: $tool is required (Debian/Ubuntu)" >&2; exit 1; }
done
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

exec 9>"$dest/.fetch.lock"
flock 9

# name, package, path, sha256 of every listed image (comments and blank lines skipped).
entries() { grep -v -e '^#' -e '^[[:space:]]*$' "$list" | cut -f1-4; }
verified() { # FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$2" ]
}

total=0
declare -A wanted=() # package -> 1, for packages with a file to (re)fetch
while IFS=$'\t' read -r name pkg _path sha; do
  total=$((total + 1))
  verified "$dest/$name" "$sha" || wanted[$pkg]=1
done < <(entries)
if [ "${#wanted[@]}" -eq 0 ]; then
  echo "corpus: $total images verified in $dest"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/zipfleet-corpus.XXXXXX")"
trap 'rm -rf "$work"' EXIT
packages=("${!wanted[@]}")
echo "corpus: downloading ${packages[*]}"
# apt-get download writes into the current directory; without package lists (a fresh
# container) it needs one `apt-get update` first.
if ! (cd "$work" && apt-get download -qq "${packages[@]}" 2>"$work/apt.err"); then
  echo "corpus: apt-get download failed; updating the package lists and retrying"
  apt-get update -qq || true
  (cd "$work" && apt-get download -qq "${packages[@]}") \
    || { echo "corpus: apt-get download ${packages[*]} failed" >&2; exit 1; }
fi

failed=()
for pkg in "${packages[@]}"; do
  deb="$(ls "$work/${pkg}"_*.deb 2>/dev/null | head -n 1)"
  [ -n "$deb" ] || { echo "corpus: no .deb downloaded for $pkg" >&2; exit 1; }
  mkdir -p "$work/root"
  # Only the listed files of this package (paths in the archive start with ./).
  entries | awk -F'\t' -v p="$pkg" '$2 == p { print "." $3 }' >"$work/$pkg.paths"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/root" -T "$work/$pkg.paths" \
    || { echo "corpus: $deb lacks some listed files" >&2; }
  while IFS=$'\t' read -r name p path sha; do
    [ "$p" = "$pkg" ] || continue
    verified "$dest/$name" "$sha" && continue
    if [ -f "$work/root$path" ] && cp "$work/root$path" "$dest/.$name.part" \
      && verified "$dest/.$name.part" "$sha"; then
      mv -f "$dest/.$name.part" "$dest/$name"
    else
      rm -f "$dest/.$name.part"
      failed+=("$name ($pkg:$path)")
    fi
  done < <(entries)
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "corpus: ${#failed[@]} file(s) missing from their package or with another sha256 than images.tsv lists:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "corpus: $total images verified in $dest"
