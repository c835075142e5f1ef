#!/bin/sh
# Compile-fail tests: each tests/compile_fail/*.c holds a definition mistake and names, on its
# first line ("expect: ..."), what the compiler's message must contain. The file must fail to
# compile with that text; ok_control.c (no expectation) must compile, so a broken harness that
# fails everything is caught too.
CC=${CC:-cc}
export LC_ALL=C  # ASCII quotes in compiler messages
dir=$(dirname "$0")/compile_fail
flags="-std=c11 -Wall -Wextra -Werror -fsyntax-only -Iinclude -Imacros"
pass=0 fail=0
for f in "$dir"/*.c; do
    expect=$(sed -n '1s/^\/\* expect: \(.*\) \*\/$/\1/p' "$f")
    out=$($CC $flags "$f" 2>&1); rc=$?
    name=$(basename "$f" .c)
    if [ -z "$expect" ]; then
        if [ $rc -eq 0 ]; then pass=$((pass + 1)); else
            fail=$((fail + 1)); echo "[FAIL] $name: should compile:"; echo "$out" | head -5; fi
    elif [ $rc -ne 0 ] && printf '%s' "$out" | grep -qF -- "$expect"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "[FAIL] $name: expected a compile error containing: $expect"
        echo "$out" | head -5
    fi
done
# The generator is pedantic-clean: every example's definitions and code compile with
# -std=c11 -Wpedantic -Werror (variadic macros called with no argument for `...` were not).
for f in examples/*.c examples/*/*.c; do
    out=$($CC -std=c11 -pthread -Wall -Wextra -Wpedantic -Werror -fsyntax-only -Iinclude \
          -Imacros -Iexamples "$f" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "[FAIL] $(basename "$f"): not -Wpedantic clean:"; echo "$out" | head -5; fi
done
echo "[====] compile-fail: Tested: $((pass + fail)) | Passing: $pass | Failing: $fail"
[ $fail -eq 0 ]
