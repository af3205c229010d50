#!/bin/bash
# A full send and five incrementals between two pools on one filesystem, through
# the CLI as a user runs them; prints the stream bytes and the sha256 of the
# sender's and the receiver's image after each step (docs/design.md §8).
# Usage: scripts/send-chain.sh MOUNTPOINT   (makes MOUNTPOINT/chainA and chainB)
set -euo pipefail
M=$1; R="node $(dirname "$0")/../bin/reflink-pool.js"
A=$M/chainA; B=$M/chainB; rm -rf $A $B
$R --pool $A init >/dev/null; $R --pool $B init >/dev/null
VID=vm-templates/tpl/root
$R --pool $A volume create $VID --size 1G >/dev/null
$R --pool $B volume create $VID --size 1G >/dev/null
write() { # n random 64 KiB blocks at random offsets into the running image $1
  python3 - "$1" "$2" <<'PY'
import os, random, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    for _ in range(n):
        f.seek(random.randrange(0, 16384) * 65536); f.write(os.urandom(65536))
    f.flush(); os.fsync(f.fileno())
PY
}
printf '%-12s %-5s %12s  %-64s  %s\n' step base bytes "sha256 (sender)" "receiver"
for step in 0 1 2 3 4 5; do
  n=$([ $step = 0 ] && echo 1600 || echo $((step * 8)))
  img=$($R --pool $A volume start $VID --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
  write "$img" $n
  $R --pool $A volume stop $VID >/dev/null
  if [ $step = 0 ]; then base=""; else base=$($R --pool $A volume revisions $VID --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["revisions"]; print(max(map(int,r)))'); fi
  $R --pool $A volume send $VID ${base:+--base $base} > $M/stream 2>/dev/null
  $R --pool $B volume receive $VID < $M/stream >/dev/null 2>&1
  s=$(sha256sum < $A/$VID.img | cut -c1-64); r=$(sha256sum < $B/$VID.img | cut -c1-64)
  printf '%-12s %-5s %12s  %s  %s\n' "$([ $step = 0 ] && echo full || echo "incr $step ($n blk)")" "${base:--}" "$(stat -c %s $M/stream)" "$s" "$([ "$s" = "$r" ] && echo same || echo DIFFERENT)"
done
