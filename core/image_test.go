package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestImageUsedErrorNamesRuns(t *testing.T) {
	var runs []string
	for i := range 7 {
		runs = append(runs, fmt.Sprintf("%02d%030x", i+1, 0))
	}
	for _, c := range []struct {
		runs      []string
		want, not []string
	}{
		{runs[:1], []string{"1 recorded run(s)", ShortRunID(runs[0]), "reproduce"}, []string{"more"}},
		{runs, []string{"7 recorded run(s)", ShortRunID(runs[4]), "and 2 more"}, []string{ShortRunID(runs[5])}},
	} {
		err := error(&ImageUsedError{Digest: "sha256:ab", Runs: c.runs})
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q does not say %q", msg, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(msg, n) {
				t.Errorf("%q says %q", msg, n)
			}
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v does not match ErrInvalid", err)
		}
	}
}
