#!/bin/sh
# irf analysis host: fetches a case's evidence, each artifact at the version its manifest
# names, checks its SHA-256 on the host with the host's own credentials, and leaves it
# read-only under $IRF_EVIDENCE_DIR/<case>. Run after the assignments of region, bucket,
# case_id and no_cli_status (evidence_script in hosts/evidence.rs writes them), followed by
# one `fetch KEY VERSION PATH SHA256` line per artifact.
# shellcheck disable=SC2154 # region, bucket, case_id and no_cli_status are assigned before this
set -eu
# Readable by the analyst's session user (not root), writable by no one once in place.
umask 022
export AWS_PAGER=""
if ! command -v aws >/dev/null 2>&1; then
  echo "irf-evidence-no-cli: this image has no AWS CLI; add Image Builder's aws-cli-version-2-linux component to the SIFT recipe" >&2
  exit "$no_cli_status"
fi
dir="${IRF_EVIDENCE_DIR:-/srv/irf/evidence}/$case_id"
mkdir -p "$dir"
fetch() {
  mkdir -p "$(dirname "$dir/$3")"
  current=""
  if [ -n "$2" ]; then
    # Any failure here (the key deleted since, a delete marker) leaves the version fetch.
    current="$(aws s3api head-object --region "$region" --bucket "$bucket" --key "$1" --query VersionId --output text 2>/dev/null || true)"
  fi
  if [ "$current" = "$2" ]; then
    # The manifest's version is the key's current one: copied in parallel ranges.
    aws s3 cp --only-show-errors --region "$region" "s3://$bucket/$1" "$dir/$3.part"
    if [ -n "$2" ] && ! echo "$4  $dir/$3.part" | sha256sum -c --quiet - >/dev/null 2>&1; then
      # Written again between the look and the copy: the version itself, then.
      aws s3api get-object --region "$region" --bucket "$bucket" --key "$1" --version-id "$2" "$dir/$3.part" >/dev/null
    fi
  else
    # The key was written again since: the manifest's version itself, in one stream.
    aws s3api get-object --region "$region" --bucket "$bucket" --key "$1" --version-id "$2" "$dir/$3.part" >/dev/null
  fi
  if ! echo "$4  $dir/$3.part" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "irf-evidence-mismatch $3 $(sha256sum "$dir/$3.part" | cut -d' ' -f1)" >&2
    rm -f "$dir/$3.part"
    exit 3
  fi
  mv -f "$dir/$3.part" "$dir/$3"
  chmod 0444 "$dir/$3"
  echo "irf-evidence $4 $(stat -c %s "$dir/$3") $dir/$3"
  case "$3" in
    *.qcow2)
      # A raw image beside it for the tools that read only raw, sparse: it takes the disk
      # space of the data. Its SHA-256 is the manifest's raw one.
      if command -v qemu-img >/dev/null 2>&1; then
        qemu-img convert -q -f qcow2 -O raw -S 4k "$dir/$3" "$dir/${3%.qcow2}.raw.part"
        mv -f "$dir/${3%.qcow2}.raw.part" "$dir/${3%.qcow2}.raw"
        chmod 0444 "$dir/${3%.qcow2}.raw"
        echo "irf-evidence-raw $dir/${3%.qcow2}.raw"
      else
        echo "irf-evidence-no-qemu-img: $3 stays QCOW2 only; install qemu-utils for a raw image beside it" >&2
      fi
      ;;
  esac
}
