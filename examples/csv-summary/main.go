// Command csv-summary is the example analysis runprov's demo runs: it reads
// every *.csv file under an input directory and writes, per file, the number
// of rows and for each numeric column its count, minimum, maximum and mean.
//
//	csv-summary [-in /safe_data] [-out /safe_outputs] [-stamp]
//
// The output is deterministic unless -stamp adds the current time, which the
// history tests use as an example of a run that does not reproduce.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	in := flag.String("in", "/safe_data", "directory of CSV files")
	out := flag.String("out", "/safe_outputs", "directory the summary is written to")
	stamp := flag.Bool("stamp", false, "write the current time into the summary")
	flag.Parse()
	if err := run(*in, *out, *stamp); err != nil {
		fmt.Fprintln(os.Stderr, "csv-summary:", err)
		os.Exit(1)
	}
}

func run(in, out string, stamp bool) error {
	var files []string
	err := filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".csv") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .csv files under %s", in)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		rel, _ := filepath.Rel(in, f)
		if err := summarise(&b, rel, f); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	if stamp {
		fmt.Fprintf(&b, "generated %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	}
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("summarised %d file(s) into %s\n", len(files), filepath.Join(out, "summary.txt"))
	return nil
}

type column struct {
	name           string
	n              int
	min, max, mean float64
}

func summarise(w io.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	cols := make([]column, len(header))
	for i, h := range header {
		cols[i].name = h
	}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rows++
		for i, v := range rec {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				continue
			}
			c := &cols[i]
			if c.n == 0 || x < c.min {
				c.min = x
			}
			if c.n == 0 || x > c.max {
				c.max = x
			}
			c.n++
			c.mean += (x - c.mean) / float64(c.n)
		}
	}
	fmt.Fprintf(w, "%s: %d rows\n", name, rows)
	for _, c := range cols {
		if c.n > 0 {
			fmt.Fprintf(w, "  %-12s n=%d min=%g max=%g mean=%.4f\n", c.name, c.n, c.min, c.max, c.mean)
		}
	}
	return nil
}
