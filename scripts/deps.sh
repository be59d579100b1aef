# Sourced by scripts/demo.sh, scripts/test.sh and the benchmark scripts: installs
# the Debian packages a command needs when they are missing (as root, with
# apt-get), or says which ones to install and stops.
#
#   need=()
#   want_cmd cmake cmake          # a command, and the package that has it
#   want_file /usr/bin/chromium chromium
#   want_py aiosmtpd python3-aiosmtpd
#   install_needed

need=()

# want_cmd COMMAND PACKAGE: PACKAGE unless COMMAND is on the PATH.
want_cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }

# want_file PATH PACKAGE: PACKAGE unless PATH is executable.
want_file() { [ -x "$1" ] || need+=("$2"); }

# want_py MODULE PACKAGE: PACKAGE unless Debian's python3 can import MODULE.
want_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || need+=("$2"); }

install_needed() {
  ((${#need[@]})) || return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. with: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
}

# The build itself: a C toolchain and cmake (Pingora's zlib-ng is built with cmake).
want_build() {
  want_cmd cc build-essential
  want_cmd make build-essential
  want_cmd cmake cmake
}
