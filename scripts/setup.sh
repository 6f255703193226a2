#!/usr/bin/env bash
# Installs what a fresh machine lacks to build the workspace. Sourced by the
# README's commands. The build needs Rust, a C compiler (SQLite is compiled in;
# protoc comes vendored from crates.io), and for the camera driver OpenCV's core,
# imgproc, imgcodecs and videoio development packages plus libclang, which the
# opencv crate uses to generate its bindings (.cargo/config.toml tells it where
# Debian puts OpenCV).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup first" >&2
    exit 1
fi

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/opencv4/opencv2/videoio.hpp ] || missing+=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev)
command -v clang >/dev/null 2>&1 || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev)
# faketime: the determinism test runs a scenario with the host's date moved.
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
# chromium: the report test renders a scenario report in a real headless browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# prometheus: its promtool checks the metrics the daemon serves.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# mosquitto: the event feed is tested against a real MQTT 5 broker (Debian puts it in /usr/sbin).
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# buf (lints the .proto files in the test suite) comes from the npm registry.
if [ ! -x tools/node_modules/.bin/buf ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "setup: installing nodejs and npm" >&2
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    echo "setup: installing buf into tools/" >&2
    npm install --prefix tools --no-audit --no-fund --silent
fi
