package core

import (
	"strings"
	"testing"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 10 << 30: "10.0 GiB"} {
		if got := HumanBytes(n); !strings.EqualFold(got, want) {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
