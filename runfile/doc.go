// Package runfile parses and validates Runfiles (format v1 and later): the
// Dockerfile-like files whose first instruction pins a container image by
// sha256 digest and whose other lines say how to run it.
//
// Lexing (comments, line continuations, JSON vs shell form, the escape
// directive) comes from buildkit's Dockerfile parser; variable expansion from
// buildkit's shell lexer. Everything else is here: every line is understood or
// refused with "PATH:LINE: what is wrong". This package does not run anything
// and does not know about images or stores.
//
// Rules beyond the Runfile grammar, where Dockerfiles leave room:
//
//   - ARGs have one scope: an ARG declared before FROM is visible after it
//     (a Runfile has no stages and refuses a second declaration).
//   - ${NAME} must name an ARG or ENV declared on an earlier line, even in
//     ${NAME:-default}; the image's environment is not visible. Values on
//     one ENV or LABEL line see the environment before the line; ARGs on
//     one line are declared left to right. ENV wins over an ARG of the same
//     name. ${NAME/PATTERN/REPLACEMENT} is refused.
//   - ENTRYPOINT, CMD and RUN words are never expanded; ENV, LABEL values,
//     WORKDIR, USER, INPUT, OUTPUT, SCRATCH, VOLUME, LIMIT and FROM are.
//     NETWORK is not: its only value is none.
//   - WORKDIR, USER, NETWORK, ENTRYPOINT and CMD may each appear once; LIMIT
//     may repeat, the later value winning per key.
//   - USER UID alone means UID:UID. Ids are 1 to 4294967294.
//   - Container paths are absolute; ".", "//" and a trailing "/" are cleaned
//     away, ".." is refused. Mount targets may not be "/", under /proc, /sys
//     or /dev, the same as another, or nested in another.
//   - INPUT and VOLUME names: [a-z0-9][a-z0-9_.-]*, at most 128 bytes. ENV
//     keys and ARG names: [A-Za-z_][A-Za-z0-9_]*. LABEL keys:
//     [A-Za-z0-9][A-Za-z0-9._/-]*, without variables.
//   - Sizes: see parseSize (K, M, G, T, all powers of 1024).
//   - Only the escape directive and runprov's own "# runprov-format=N" are
//     accepted; syntax and check are refused. A file without runprov-format
//     is format 1; DEVICE needs format 2. DEVICE names are not expanded.
//   - A file is at most 1 MiB, a line at most 32 KiB, UTF-8 text without
//     control characters other than tab.
package runfile
