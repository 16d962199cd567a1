package history

import "time"

// TermLayout is the one way runprov writes a time for people on a
// terminal: local time with its zone. JSON and CSV use RFC 3339 instead.
const TermLayout = "2006-01-02 15:04:05 MST"

// TermTime formats t with TermLayout; "-" when it is zero.
func TermTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(TermLayout)
}
