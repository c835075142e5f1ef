#!/bin/sh
# Makes sure Criterion (the test framework) can be compiled against; installs it on Debian when
# running as root, otherwise says exactly what to install. Never fails without saying why.
have() { printf '#include <criterion/criterion.h>\n' | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Criterion is missing: installing libcriterion-dev with apt-get" >&2
    (apt-get install -y libcriterion-dev || { apt-get update && apt-get install -y libcriterion-dev; }) >&2
    have && exit 0
fi
cat >&2 <<'MSG'
error: the tests need Criterion (https://github.com/Snaipe/Criterion), which is not installed.
  Debian/Ubuntu:  sudo apt-get install libcriterion-dev
  Fedora:         sudo dnf install criterion-devel
  macOS:          brew install criterion
Then run `make test` again.
MSG
exit 1
