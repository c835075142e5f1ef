#!/bin/sh
# Compile-fail tests: each tests/compile_fail/*.c holds a definition mistake and names, on its
# first line ("expect: ..."), what the compiler's first error must contain, and optionally on
# its second ("errors: N") how many errors it may report in all. The file must fail to compile
# so; ok_control.c (no expectation) must compile, so a broken harness that fails everything is
# caught too.
CC=${CC:-cc}
export LC_ALL=C  # ASCII quotes in compiler messages
dir=$(dirname "$0")/compile_fail
flags="-std=c11 -Wall -Wextra -Werror -fsyntax-only -Iinclude -Imacros"
pass=0 fail=0
for f in "$dir"/*.c; do
    expect=$(sed -n '1s/^\/\* expect: \(.*\) \*\/$/\1/p' "$f")
    most=$(sed -n '2s/^\/\* errors: \([0-9]*\) \*\/$/\1/p' "$f")
    out=$($CC $flags "$f" 2>&1); rc=$?
    name=$(basename "$f" .c)
    first=$(printf '%s\n' "$out" | grep -m1 'error:')
    errors=$(printf '%s\n' "$out" | grep -c 'error:')
    if [ -z "$expect" ]; then
        if [ $rc -eq 0 ]; then pass=$((pass + 1)); else
            fail=$((fail + 1)); echo "[FAIL] $name: should compile:"; echo "$out" | head -5; fi
    elif [ $rc -eq 0 ] || ! printf '%s' "$first" | grep -qF -- "$expect"; then
        fail=$((fail + 1))
        echo "[FAIL] $name: expected a first compile error containing: $expect"
        echo "$out" | grep 'error:' | head -5
    elif [ -n "$most" ] && [ "$errors" -gt "$most" ]; then
        fail=$((fail + 1))
        echo "[FAIL] $name: $errors errors, at most $most expected:"
        echo "$out" | grep 'error:' | head -5
    else
        pass=$((pass + 1))
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
