package git

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkCycleAt measures what one `runprov add` asks of git — restore the
// repository from its tarball, commit, archive — when the repository already
// has N commits.
func BenchmarkCycleAt(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("commits=%d", n), func(b *testing.B) {
			ctx := context.Background()
			tmp := b.TempDir()
			r, err := Opener{}.OpenRepo(ctx, tmp, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if _, err := r.CommitFile(ctx, "Runfile", []byte(fmt.Sprintf("FROM x\n# %d\n", i)), "c\n", alice); err != nil {
					b.Fatal(err)
				}
			}
			tarball, err := r.Archive(ctx)
			r.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(tarball)), "tarball-bytes")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := Opener{}.OpenRepo(ctx, tmp, tarball)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.CommitFile(ctx, "Runfile", []byte(fmt.Sprintf("FROM x\n# b%d\n", i)), "c\n", alice); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Archive(ctx); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}
