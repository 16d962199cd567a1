package sqlite

import (
	"strings"
	"unicode/utf8"
)

// Listing runs decodes four JSON columns of each row (args, env, labels,
// argv), and encoding/json's reflection costs more than reading the row.
// What json.Marshal wrote there is a flat array or object of strings with
// no spaces; plainStrings and plainStringMap read that form directly and
// report false for anything else (an escape, a space, a number, invalid
// UTF-8, a control character), which encoding/json then reads as before.

// plainText reports whether text can hold only plain strings: no escapes,
// no control characters or whitespace, valid UTF-8.
func plainText(text string) bool {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(text)
}

// plainString reads the string that starts at text[i] (a quote) and
// returns it and the index after its closing quote.
func plainString(text string, i int) (string, int, bool) {
	if i >= len(text) || text[i] != '"' {
		return "", 0, false
	}
	end := strings.IndexByte(text[i+1:], '"')
	if end < 0 {
		return "", 0, false
	}
	return text[i+1 : i+1+end], i + 2 + end, true
}

// plainStrings reads `["a","b"]`.
func plainStrings(text string) ([]string, bool) {
	if len(text) < 2 || text[0] != '[' || text[len(text)-1] != ']' || !plainText(text) {
		return nil, false
	}
	out := []string{}
	if text == "[]" {
		return out, true
	}
	for i := 1; ; {
		s, next, ok := plainString(text, i)
		if !ok || next >= len(text) {
			return nil, false
		}
		out = append(out, s)
		switch text[next] {
		case ']':
			return out, next == len(text)-1
		case ',':
			i = next + 1
		default:
			return nil, false
		}
	}
}

// plainStringMap reads `{"k":"v","k2":"v2"}`; a repeated key keeps its
// last value, as encoding/json does.
func plainStringMap(text string) (map[string]string, bool) {
	if len(text) < 2 || text[0] != '{' || text[len(text)-1] != '}' || !plainText(text) {
		return nil, false
	}
	out := map[string]string{}
	if text == "{}" {
		return out, true
	}
	for i := 1; ; {
		k, next, ok := plainString(text, i)
		if !ok || next >= len(text) || text[next] != ':' {
			return nil, false
		}
		v, next, ok := plainString(text, next+1)
		if !ok || next >= len(text) {
			return nil, false
		}
		out[k] = v
		switch text[next] {
		case '}':
			return out, next == len(text)-1
		case ',':
			i = next + 1
		default:
			return nil, false
		}
	}
}
