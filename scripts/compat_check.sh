#!/usr/bin/env bash
# make compat-check: `make demo` and `make test` from a fresh clone inside Debian roots built
# with debootstrap from Debian's own archive: Debian 13 "trixie" (QGIS 3.40 LTR, Python 3.13,
# NumPy 2) and Debian unstable "sid" (QGIS 3.44) where it installs. Needs root.
# A root is built once (about 10 min) and reused; the clone is fresh every run.
#   scripts/compat_check.sh [suite ...]        default: trixie sid
# Environment: COMPAT_DIR (roots, default /var/cache/demsr-compat), DEBIAN_MIRROR,
# COMPAT_MAKEFLAGS (extra make variables inside the root, e.g. TORCH_BUILD=default),
# COMPAT_STEPS (default "demo test"). Logs and the summary go to build/compat/ (summary.txt).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE=${COMPAT_DIR:-/var/cache/demsr-compat}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LOGS=$REPO/build/compat
STEPS=${COMPAT_STEPS:-demo test}
SHARED=$(cd "$REPO/.." && pwd)/shared   # the real DEMs the tests crop (../shared/data/dems)
mkdir -p "$LOGS" "$BASE"
[ "$(id -u)" -eq 0 ] || { echo "compat-check needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || { echo "install debootstrap (apt install debootstrap)"; exit 1; }

bootstrap() {  # suite root
  if [ -f "$2/.demsr-root" ]; then echo "reusing $2"; return; fi
  rm -rf "$2.partial"
  debootstrap --variant=minbase --include=ca-certificates,git,make,python3 "$1" "$2.partial" \
    "$MIRROR"
  mv "$2.partial" "$2"
  touch "$2/.demsr-root"
}

# The root reaches the same network as this machine: its DNS and hosts, its extra CA
# certificates, its pip configuration files (/etc/pip.conf, /etc/xdg/pip: index, certificate,
# constraints).
# Per-user pip files and PIP_* paths into this machine's folders stay out (not in the root).
configure() {  # root
  cp -L /etc/resolv.conf "$1/etc/resolv.conf"
  cp -L /etc/hosts "$1/etc/hosts"  # this machine's own name (torchrun's rendezvous needs it)
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$1/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"
    chroot "$1" update-ca-certificates >/dev/null
  fi
  # As on this machine: a mirror serving a dated snapshot serves unstable's Release file past
  # its Valid-Until date (trixie's has none), which apt would refuse.
  echo 'Acquire::Check-Valid-Until "false";' >"$1/etc/apt/apt.conf.d/99demsr-snapshot"
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$1/etc/pip.conf"
  if [ -d /etc/xdg/pip ]; then mkdir -p "$1/etc/xdg"; cp -r /etc/xdg/pip "$1/etc/xdg/"; fi
  return 0
}

MOUNTED=()
mount_root() {  # root
  local r=$1
  mount -t proc proc "$r/proc" && MOUNTED+=("$r/proc")
  mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys" && MOUNTED+=("$r/sys")
  mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev" && MOUNTED+=("$r/dev")
  mkdir -p "$r/work/shared"
  mount --bind "$SHARED" "$r/work/shared" && mount -o remount,ro,bind "$r/work/shared" &&
    MOUNTED+=("$r/work/shared")
}
umount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -R -l "${MOUNTED[i]}" || true; done
  MOUNTED=()
}
trap umount_all EXIT

in_root() {  # root command...
  local r=$1; shift
  chroot "$r" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-60}" bash -c "$*"
}

summary() { echo "$*" | tee -a "$LOGS/summary-$suite.txt"; }

check() {  # suite
  local suite=$1 root=$BASE/$1 t0 rc step
  : >"$LOGS/summary-$suite.txt"
  bootstrap "$suite" "$root"
  configure "$root"
  mount_root "$root"
  rm -rf "$root/work/demsr"
  git clone --quiet "$REPO" "$root/work/demsr"
  summary "== $suite: $(git -C "$REPO" log -1 --format='%h %s' | cut -c1-80)"
  for step in $STEPS; do
    t0=$(date +%s)
    rc=0
    in_root "$root" "cd /work/demsr && make $step ${COMPAT_MAKEFLAGS:-}" \
      >"$LOGS/$suite-$step.log" 2>&1 || rc=$?
    summary "$suite make $step: exit $rc in $(( $(date +%s) - t0 )) s" \
      "$(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed).* in [0-9.]+s' \
         "$LOGS/$suite-$step.log" | tail -1)"
  done
  summary "$suite: $(in_root "$root" "dpkg-query -W -f='QGIS \${Version}, ' qgis 2>/dev/null;
    python3 -c 'import sys, numpy; print(\"Python\", sys.version.split()[0] + \", NumPy\",
    numpy.__version__)' 2>/dev/null" | tr -d '\n')"
  summary "$suite: demsr-deps $(du -sh "$root/root/.local/share/QGIS/QGIS3/profiles/default/python/demsr-deps" 2>/dev/null | cut -f1)"
  umount_all
}

for suites in "${@:-trixie sid}"; do
  for suite in $suites; do check "$suite" || summary "$suite: the check stopped (exit $?)"; done
done
cat "$LOGS"/summary-*.txt >"$LOGS/summary.txt"
cat "$LOGS/summary.txt"
