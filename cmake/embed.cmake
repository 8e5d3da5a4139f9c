# Turns the file IN into the C source OUT defining `const char NAME[]`: the file's bytes and a NUL, so that a
# kernel template (codegen/kernels/*.cuh) is part of the binary and stays a readable file in the tree. An array
# rather than a string literal: C11 compilers need not take literals over 4,095 characters (-Woverlength-strings).
# Run as: cmake -DIN=... -DOUT=... -DNAME=... -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1, " bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f], " 16 line) # 16 bytes a line (CMake regexes have no {16})
string(REGEX REPLACE "(${line})" "\\1\n  " bytes "${bytes}")
file(WRITE "${OUT}" "/* ${NAME}: the bytes of ${IN}, made by cmake/embed.cmake at build time. */\n"
     "extern const char ${NAME}[];\nconst char ${NAME}[] = {\n  ${bytes}0x00};\n")
