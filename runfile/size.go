package runfile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// Sizes (SCRATCH, LIMIT memory) are a whole number of bytes with an optional
// unit K, M, G or T (any case), optionally followed by "i" and/or "B": 512M,
// 2G, 2Gi, 2GiB and 2GB are all 2×1024³ bytes; 1024 and 1024B are bytes.
// Every unit is a power of 1024: limits are about memory, and one rule is
// easier to remember than two.
var reSize = core.LazyRegexp(`^([0-9]+)(?:([kKmMgGtT])(i)?)?([bB])?$`)

var sizeUnits = map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}

const sizeForm = "a size like 512M, 2G or 1073741824 (units K, M, G, T are powers of 1024)"

// parseSize reads a size above zero.
func parseSize(s string) (int64, error) {
	m := reSize().FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s is not %s", show(s), sizeForm)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is too large", show(s))
	}
	if m[2] != "" {
		unit := sizeUnits[strings.ToUpper(m[2])[0]]
		if n > (1<<63-1)/unit {
			return 0, fmt.Errorf("%s is too large", show(s))
		}
		n *= unit
	}
	if n <= 0 {
		return 0, fmt.Errorf("%s is zero; give %s", show(s), sizeForm)
	}
	return n, nil
}

// formatSize writes n in the largest unit that divides it exactly, so that
// parseSize(formatSize(n)) == n.
func formatSize(n int64) string {
	for _, u := range []byte("TGMK") {
		if unit := sizeUnits[u]; n >= unit && n%unit == 0 {
			return strconv.FormatInt(n/unit, 10) + string(u)
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseSize reads a size as SCRATCH and LIMIT memory take it, for flags
// that take sizes the same way.
func ParseSize(s string) (int64, error) { return parseSize(s) }
