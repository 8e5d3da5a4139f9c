#!/bin/sh
# launch-sequence.sh MODULE.tir: the kinds of the entry function's top-level launches, one per line, in order
# (fusion:KIND for a fusion, the op name otherwise; reshapes, params and constants launch nothing). Assumes the
# printer's layout: top-level ops at four spaces, region bodies deeper.
grep -E '^    [%(]' "$1" | grep -vE '= (reshape|param|constant)\(' |
  sed -E 's/.*\{kind = "([a-z_]+)"\}.*/fusion:\1/; s/^ *[^=]*= ([a-z_]+)\(.*/\1/'
