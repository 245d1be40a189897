#!/usr/bin/env bash
# The main job on the bundled example image, in a temporary data root:
# load → create a container → mount it with the kernel → change files through the mount →
# diff → commit → the same through the userspace engine (no mount) → info → clean up.
# Needs root (kernel overlay mounts). Run from the repository: `npm run example`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(mktemp -d /tmp/overlay2-example.XXXXXX)
ov2() { node bin/overlay2.js --root "$ROOT" "$@"; }
cleanup() {
  node bin/overlay2.js --root "$ROOT" umount demo >/dev/null 2>&1 || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ overlay2 %s\033[0m\n' "$*"; }

step load examples/example-image.tar;        ov2 load examples/example-image.tar
step images;                                  ov2 images
step layers;                                  ov2 layers
step create --name demo example:1;            ov2 create --name demo example:1
step mount demo;                              MERGED=$(ov2 mount demo); echo "$MERGED"
echo "   (layers as Docker lays them out:)"; ls "$ROOT/overlay2" | sed 's/^/   /'
echo "   lower of the container layer: $(cat "$(dirname "$MERGED")/lower")"
echo "   kernel mount: $(grep " $MERGED " /proc/mounts | cut -c1-160)..."
echo
echo '   changing files through the kernel mount:'
echo '     echo edited > /etc/hostname; rm /etc/motd; mkdir -p /srv/www; echo hi > /srv/www/index.html; rm -r /var/cache/app'
echo edited > "$MERGED/etc/hostname"
rm "$MERGED/etc/motd"
mkdir -p "$MERGED/srv/www" && echo hi > "$MERGED/srv/www/index.html"
rm -r "$MERGED/var/cache/app"
step diff demo;                               ov2 diff demo
step umount demo;                             ov2 umount demo
step fs demo ls -l /bin   "(userspace engine: no mount)"; ov2 fs demo ls -l /bin
step 'fs demo put /srv/www/about.txt  < "engine-written"'; echo engine-written | ov2 fs demo put /srv/www/about.txt
step fs demo mv /home /home-moved "(a lower dir: EXDEV, copied like mv(1))"; ov2 fs demo mv /home /home-moved
step diff demo;                               ov2 diff demo
step commit demo example:2;                   ov2 commit demo example:2
step images;                                  ov2 images
step create --name check example:2;           ov2 create --name check example:2
step fs check cat /srv/www/about.txt;         ov2 fs check cat /srv/www/about.txt
step info;                                    ov2 info
step rm demo check;                           ov2 rm demo check
step rmi example:2;                           ov2 rmi example:2
echo
echo "done; removing the temporary data root $ROOT"
